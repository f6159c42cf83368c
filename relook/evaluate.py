"""Evaluation: answer a task set in one inference mode, render and judge every final answer.

    relook eval --model PATH --tasks FILE.jsonl [--mode base|self-edit|critic] [--rounds N] [--critic checklist|mllm] --json

Metrics: valid_render_rate (share of final answers that render), critic_score_mean (mean score, an invalid render
counting 0 as in the reward; unparsable judge replies are counted in `critic_failures` and excluded, as the
ArtifactsBench harness does), mean_turns (policy turns sampled per task), per_category, per_difficulty (tasks
that have one), and seconds_per_task (inference wall time; judging excluded). Per task: the score, the critic's
own score, its raw reply and error, the answer.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

from relook import infer


def _mean(xs) -> float | None:
    xs = [x for x in xs if x is not None]
    return round(sum(xs) / len(xs), 2) if xs else None


def summarize(records: Sequence[dict], mode: str = "") -> dict:
    def block(rs):
        judged = [r for r in rs if r["score"] is not None]
        seen = [r for r in rs if not r.get("infra")]  # a render that failed through our fault says nothing
        return {"n_tasks": len(rs),
                "valid_render_rate": round(sum(r["valid"] for r in seen) / len(seen), 4) if seen else 0.0,
                "critic_score_mean": round(sum(r["score"] for r in judged) / len(judged), 2) if judged else None,
                "critic_score_loop_mean": _mean([r.get("score_loop") for r in rs]),
                "critic_failures": len(rs) - len(judged) - (len(rs) - len(seen)),
                "infra_failures": len(rs) - len(seen),
                "mean_turns": round(sum(r.get("n_turns", 1) for r in rs) / len(rs), 3) if rs else 0.0}
    out = block(records)
    out["mode"] = mode
    out["per_category"] = {c: block([r for r in records if r["category"] == c])
                           for c in sorted({r["category"] for r in records})}
    if any(r.get("difficulty") for r in records):  # benchmarks that grade their tasks (ArtifactsBench)
        out["per_difficulty"] = {d: block([r for r in records if r.get("difficulty") == d])
                                 for d in sorted({r.get("difficulty") for r in records}, key=str)}
    out["seconds_per_task"] = round(sum(r["seconds"] for r in records) / len(records), 4) if records else 0.0
    return out


def evaluate(policy, tasks: Sequence, env, mode: str = "base", rounds: int = 3, rollout_cfg=None,
             out_jsonl: str | Path | None = None, judge_env=None, answers=None, **gen) -> dict:
    """Answer `tasks` in `mode` with `env` in the loop (critic-in-loop selects with it), judge the finals with
    `judge_env` (default: `env.judge()`, the held-out checklist items the loop never saw), return the summary and
    write per-task records to `out_jsonl`. `score` is the judge's; `score_loop` what the loop's own items say
    (for critic-in-loop, the score it selected on). `answers`: this mode's answers, already sampled."""
    judge = judge_env or (env.judge() if hasattr(env, "judge") else env)
    if answers is None:
        answers = infer.answer(policy, tasks, mode=mode, rounds=rounds, env=env, rollout_cfg=rollout_cfg, **gen)
    t0 = time.perf_counter()
    # the loop's view of each final answer: critic-in-loop answers were judged in the loop already; the others are
    # judged on the loop's items too (a page renders once: the renderer's cache serves the second look)
    loop = [a.judged for a in answers]
    todo = [i for i, r in enumerate(loop) if r is None]
    if todo:
        for i, r in zip(todo, env.step_many_sync([tasks[i] for i in todo], [answers[i].text for i in todo])):
            loop[i] = r
    # the judge's own look: unless it would see exactly what the loop saw (the same critic, and a task without
    # held-out items looks the same in every view) -- an MLLM judge is not asked twice for one opinion
    same_critic = judge is env or getattr(judge, "critic", None) is getattr(env, "critic", None)
    again = [i for i, t in enumerate(tasks)
             if not same_critic or any(getattr(it, "judge_only", False) for it in getattr(t, "checklist", []))]
    results = list(loop)
    if judge is not env and again:
        for i, r in zip(again, judge.step_many_sync([tasks[i] for i in again], [answers[i].text for i in again])):
            results[i] = r
    judge_s = time.perf_counter() - t0
    records = []
    for t, a, r, lr in zip(tasks, answers, results, loop):
        score = None if r.reward is None else round(100.0 * r.reward, 2)  # zero rule: invalid -> 0
        crit = getattr(r, "critique", None)  # a critic-in-loop TurnRecord keeps only the score and feedback
        records.append({"task_id": t.id, "category": t.category, "mode": mode, "valid": r.valid, "error": r.error,
                        "infra": bool(getattr(r, "infra", False)),
                        "score": score, "critic_score": r.score, "critic_error": crit.error if crit else None,
                        "score_loop": None if lr.reward is None else round(100.0 * lr.reward, 2),
                        "feedback": r.feedback, "judge_reply": crit.raw if crit else None,
                        "seconds": round(a.seconds, 4), "n_turns": len(a.turns), "n_tokens": a.n_tokens,
                        "answer": a.text, "seed": gen.get("seed"),
                        **{k: t.meta[k] for k in ("class", "difficulty") if k in t.meta}})
    summary = summarize(records, mode)
    summary["judge_seconds"] = round(judge_s, 2)
    if out_jsonl:
        p = Path(out_jsonl)
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("w") as f:
            for rec in records:
                f.write(json.dumps(rec) + "\n")
    return summary


def load_records(path) -> list[dict]:
    """The per-task records `evaluate(..., out_jsonl=path)` wrote."""
    return [json.loads(ln) for ln in Path(path).read_text().splitlines() if ln.strip()]


def _per_task(records: Sequence[dict], key: str) -> dict[str, float]:
    """{task_id: mean of `key` over the task's records} (several records per task: one per seed)."""
    acc: dict[str, list[float]] = {}
    for r in records:
        if r.get(key) is not None:
            acc.setdefault(r["task_id"], []).append(float(r[key]))
    return {t: sum(v) / len(v) for t, v in acc.items()}


def paired_gap(a: Sequence[dict], b: Sequence[dict], key: str = "score", level: float = 0.95) -> dict:
    """Mean per-task difference a - b (`key` = "score" or "valid"; a task's records over seeds are averaged first,
    so seeds sharpen each task's value and the tasks are the sample) with scipy's paired t-test: {gap, se, ci_low,
    ci_high, p, n}. On a few hundred tasks a couple of points of mean score can still be noise."""
    from scipy import stats
    av, bv = _per_task(a, key), _per_task(b, key)
    common = sorted(set(av) & set(bv))
    x, y = [av[t] for t in common], [bv[t] for t in common]
    n = len(common)
    if n < 2:
        g = x[0] - y[0] if n else float("nan")
        return {"gap": g, "se": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "p": float("nan"),
                "n": n}
    d = [u - v for u, v in zip(x, y)]
    gap = sum(d) / n
    if all(v == d[0] for v in d):  # no spread: the t-test is undefined, the gap is exact
        return {"gap": gap, "se": 0.0, "ci_low": gap, "ci_high": gap, "p": 0.0 if gap else 1.0, "n": n}
    t = stats.ttest_rel(x, y)
    ci = t.confidence_interval(level)
    return {"gap": gap, "se": float(stats.sem(d)), "ci_low": float(ci.low), "ci_high": float(ci.high),
            "p": float(t.pvalue), "n": n}


def compare_modes(policy, tasks: Sequence, env, modes=("base", "self-edit", "critic"), rounds: int = 3,
                  rollout_cfg=None, out_dir=None, tag: str = "", suffix: str = "", **gen) -> dict[str, dict]:
    """`evaluate` in several inference modes on the same tasks and seed. Every mode starts with an empty render
    cache: with one seed the modes share first attempts, and reusing their renders would flatter the later
    modes' seconds_per_task. With both base and self-edit, base's answers are self-edit's first round
    (infer.first_passes: the same draw), sampled once; base's seconds_per_task is that round's time. Per-task
    records go to out_dir/eval_<tag><mode><suffix>.jsonl when out_dir is given."""
    from relook.render import default_renderer

    out, answers = {}, {}
    if "base" in modes and "self-edit" in modes:
        answers["self-edit"] = infer.answer(policy, tasks, mode="self-edit", rounds=rounds, **gen)
        answers["base"] = infer.first_passes(answers["self-edit"])
    renderer = getattr(env, "renderer", None) or default_renderer()
    for mode in modes:
        renderer.clear_cache()
        path = Path(out_dir) / f"eval_{tag}{mode}{suffix}.jsonl" if out_dir else None
        out[mode] = evaluate(policy, tasks, env, mode=mode, rounds=rounds, rollout_cfg=rollout_cfg, out_jsonl=path,
                             answers=answers.get(mode), **gen)
    return out


def claim(a: Sequence[dict], b: Sequence[dict], key: str = "score", level: float = 0.95) -> dict:
    """Did `a` beat `b`? "held" when the paired gap's confidence interval lies above 0, "did NOT hold" when it lies
    below, else "inconclusive" (the data cannot tell). Returns paired_gap's figures with the verdict, and the gap
    per seed when the records carry one (does every seed agree?)."""
    g = paired_gap(a, b, key, level)
    g["verdict"] = ("held" if g["ci_low"] > 0 else "did NOT hold" if g["ci_high"] < 0 else "inconclusive")
    seeds = sorted({r["seed"] for r in list(a) + list(b) if r.get("seed") is not None})
    if len(seeds) > 1:
        g["per_seed"] = {s: round(paired_gap([r for r in a if r.get("seed") == s],
                                             [r for r in b if r.get("seed") == s], key)["gap"], 3) for s in seeds}
    return g


# What notebook 05 reports of a make train run: (a, b, key) = eval_<a>.jsonl against eval_<b>.jsonl on `key`
RUN_GAPS = (("after_base", "before_base", "score"), ("after_base", "before_base", "valid"),
            ("before_self-edit", "before_base", "score"), ("after_self-edit", "after_base", "score"))


def run_gaps(run_dir, gaps=RUN_GAPS) -> dict[str, dict]:
    """Did RL help, does self-edit help? `claim` on a run's before/after records, paired over the eval tasks:
    {"a - b (key)": claim's figures and verdict}."""
    rec = lambda name: load_records(Path(run_dir) / f"eval_{name}.jsonl")  # noqa: E731
    return {f"{a} - {b} ({key})": claim(rec(a), rec(b), key) for a, b, key in gaps}


# The paper's claims as notebook 07 tests them: (key, claim, a, b, on) = a's per-task records should beat b's on
# `on` ("score" or "valid"). a and b name eval_<name>.jsonl records: the warm start, the trained variants of
# config.ABLATIONS, and the full model's inference modes (compare_modes with tag "full_"; its base decoding is full).
CLAIMS = (
    ("rl_valid", "RL raises ValidRenderRate over the warm start", "full", "warm_start", "valid"),
    ("rl_score", "RL raises the critic score over the warm start", "full", "warm_start", "score"),
    ("fo", "Forced Optimization helps", "full", "no_fo", "score"),
    ("zero_rule", "the zero rule helps renderability", "full", "no_zero_rule", "valid"),
    ("vision", "a vision-grounded critic beats a text-only one", "full", "text_critic", "score"),
    ("self_edit", "critic-free self-edit improves on one pass", "full_self-edit", "full", "score"),
    ("critic_loop", "critic-in-loop improves on one pass", "full_critic", "full", "score"),
)


def load_evals(out_dir, names: Sequence[str]) -> dict[str, list[dict]]:
    """{name: per-task records} from out_dir/eval_<name>.jsonl and, one file per seed, eval_<name>_s<seed>.jsonl
    (pooled: each record carries its seed), for each of `names` that has any."""
    out = {}
    for n in names:
        paths = [Path(out_dir) / f"eval_{n}.jsonl"] + sorted(Path(out_dir).glob(f"eval_{n}_s[0-9]*.jsonl"))
        recs = [r for p in paths if p.exists() for r in load_records(p)]
        if recs:
            out[n] = recs
    return out


def verdicts(records: dict[str, Sequence[dict]], claims=CLAIMS, level: float = 0.95) -> dict[str, dict]:
    """Every claim whose two sides are in `records` ({name: per-task records, over one or more seeds}, e.g. from
    load_evals), weighed by `claim`: {key: {claim, verdict, gap, se, ci_low, ci_high, p, n, on, a, b}}. A claim
    missing a side is left out, not guessed."""
    out = {}
    for key, text, a, b, on in claims:
        if a in records and b in records:
            g = claim(records[a], records[b], on, level)
            out[key] = {"claim": text, "on": on, "a": a, "b": b,
                        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in g.items()}}
    return out


def verdict_line(v: dict) -> str:
    """One verdict of `verdicts` as a sentence: "[held] claim: a - b = +gap points (95% CI lo..hi, p, n tasks)"."""
    unit = "points" if v["on"] == "score" else "valid-rate"
    seeds = f", per seed {v['per_seed']}" if v.get("per_seed") else ""
    return (f"[{v['verdict']}] {v['claim']}: {v['a']} - {v['b']} = {v['gap']:+.2f} {unit} "
            f"(95% CI {v['ci_low']:+.2f}..{v['ci_high']:+.2f}, p {v['p']:.3g}, {v['n']} tasks{seeds})")


def self_edit_keeps(modes: dict) -> dict:
    """The paper's inference claim in numbers, from `compare_modes` summaries with base, self-edit and critic:
    how much of critic-in-loop's score gain over one pass critic-free self-edit keeps, and at what share of its
    time per task."""
    score = {m: modes[m]["critic_score_mean"] or 0.0 for m in ("base", "self-edit", "critic")}
    g_self, g_crit = score["self-edit"] - score["base"], score["critic"] - score["base"]
    # a share of a gain only when both gained: a loss over a small gain gives figures like -328%, which say nothing.
    # None, not NaN: json.dumps writes NaN as a bare token that strict readers (jq, JavaScript) reject
    return {"gain_self_edit": round(g_self, 2), "gain_critic": round(g_crit, 2),
            "kept": g_self / g_crit if g_crit > 0 and g_self >= 0 else None,
            "critic_cost_vs_self_edit": modes["critic"]["seconds_per_task"] / max(1e-9, modes["self-edit"]["seconds_per_task"])}


def keeps_line(keeps: dict) -> str:
    """`self_edit_keeps` as a sentence (points on the judge's items); says so when there is no gain to share."""
    gains = (f"self-edit {keeps['gain_self_edit']:+.1f} and critic-in-loop {keeps['gain_critic']:+.1f} points over one "
             f"pass, at {keeps['critic_cost_vs_self_edit']:.1f}x self-edit's time per task for critic-in-loop")
    if keeps["kept"] is None:
        return f"{gains}: no shared gain, so no share kept"
    return f"self-edit keeps {keeps['kept']:.0%} of the critic-in-loop gain ({gains})"
