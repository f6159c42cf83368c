"""How much of critic-free self-edit's gain do the warm start's self-edit demonstrations build in, and how much is RL's?

Evaluates on the config's eval split, in base and self-edit mode (same seed and sampling as `make train`'s
notebook 05, judged on the held-out checklist items): the warm start as configured, and the warm start built
without self-edit demonstrations (`warmstart.p_self_edit=0`; built and cached on first use, as `relook warmstart`
does: ~3 min of demonstrations, ~17 min of SFT and ~3 min of evaluation on 2 cores for the tiny config). With --run
(a finished `make train` of the same config and seed, no --set), the run's before-records stand for the configured
warm start and its after-records give RL's share. Every gain is paired over the tasks (relook.evaluate.claim:
scipy's paired t-test, 95% CI). The "without" warm start is a separate SFT run (its other demonstrations draw
differently too), so its difference carries that run's variance, which one seed's task-level CI does not cover.

    python benchmarks/self_edit_demos.py --config tiny --run runs/tiny --json docs/self_edit_demos.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without `pip install -e`


def gains(records: dict[str, list[dict]]) -> list[dict]:
    """Per task: self-edit score minus base score (the records of one policy), as records claim() can pair."""
    base = {r["task_id"]: r["score"] for r in records["base"] if r["score"] is not None}
    return [{"task_id": r["task_id"], "score": r["score"] - base[r["task_id"]]}
            for r in records["self-edit"] if r["score"] is not None and r["task_id"] in base]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides (both variants)")
    ap.add_argument("--run", default="", help="a finished make train run directory (its eval_before/after records)")
    ap.add_argument("--out", default="runs/self_edit_demos", help="where the per-task records go")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default="")
    a = ap.parse_args(argv)

    from relook.config import load_config, project_path
    from relook.evaluate import claim, compare_modes, load_records
    from relook.rollout import make_environment
    from relook.tasks import load_tasks
    from relook.warmstart import load_policy

    out = project_path(a.out)
    run = project_path(a.run) if a.run else None
    if run:  # the run's records stand in for the configured warm start only if they are of the same condition
        ran = json.loads((run / "results.json").read_text())
        mine, theirs = load_config(a.config).to_dict(), load_config(str(run / "config.yaml")).to_dict()
        same = {k: v for k, v in mine.items() if k != "out_dir"} == {k: v for k, v in theirs.items() if k != "out_dir"}
        if a.set or ran.get("seed") != a.seed or not same:
            ap.error(f"--run {a.run}: its config/seed differ from --config {a.config} --seed {a.seed} (and no --set)")
    records, summary = {}, {}
    for name, extra in (("with", []), ("without", ["warmstart.p_self_edit=0"])):
        cfg = load_config(a.config, a.set + extra)
        if name == "with" and run:
            records[name] = {m: load_records(run / f"eval_before_{m}.jsonl") for m in ("base", "self-edit")}
            summary[name] = {"records": str(run / "eval_before_*.jsonl"), **ran["before"]}
        else:
            tasks = load_tasks(cfg.resolve(cfg.eval.tasks))[: cfg.eval.n_tasks]
            res = compare_modes(load_policy(cfg), tasks, make_environment(cfg), ("base", "self-edit"),
                                rounds=cfg.eval.rounds, out_dir=out, tag=f"{name}_",
                                max_new_tokens=cfg.rollout.max_new_tokens, temperature=cfg.eval.temperature,
                                seed=a.seed)
            records[name] = {m: load_records(out / f"eval_{name}_{m}.jsonl") for m in ("base", "self-edit")}
            summary[name] = {m: {k: s[k] for k in ("valid_render_rate", "critic_score_mean", "seconds_per_task")}
                             for m, s in res.items()}
        summary[name]["p_self_edit"] = cfg.warmstart.p_self_edit
        summary[name]["self_edit_gain"] = claim(records[name]["self-edit"], records[name]["base"])
    # the demonstrations' share: the warm start's self-edit gain with them minus without them, paired per task
    summary["gain_from_self_edit_demos"] = claim(gains(records["with"]), gains(records["without"]))
    if a.run:
        run = project_path(a.run)
        after = {m: load_records(run / f"eval_after_{m}.jsonl") for m in ("base", "self-edit")}
        summary["after_rl"] = {"self_edit_gain": claim(after["self-edit"], after["base"])}
        # RL's share: the trained policy's self-edit gain minus the warm start's, paired per task
        summary["gain_from_rl"] = claim(gains(after), gains(records["with"]))
    summary["config"], summary["overrides"] = a.config, a.set
    print(json.dumps(summary, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
