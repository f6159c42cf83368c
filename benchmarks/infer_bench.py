"""Inference cost of the three modes on the same tasks: base decoding, critic-free self-edit, critic-in-loop.

    python benchmarks/infer_bench.py --model runs/tiny/policy [--tasks FILE] [--n 24] [--json out.json]

Reports wall time per task and the ratios the paper discusses: self-edit (1 round) vs single pass (target <= 1.5x)
and critic-in-loop vs self-edit (the paper measured ~6.8x with its 72B MLLM critic). Generation runs batched, so
per-task time is batch time / batch size; the critic's render + judge time is included for critic-in-loop. Each
mode is timed once after a warm-up call, with the same seed; base is self-edit's first round (the same draw,
sampled once: relook.evaluate.compare_modes), timed as that round.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without `pip install -e`


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--tasks", default="", help="default: the tiny config's eval split")
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--max-new-tokens", type=int, default=0, help="default: the tiny config's rollout budget")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    a = ap.parse_args(argv)

    from relook import infer
    from relook.config import load_config
    from relook.evaluate import compare_modes, keeps_line, self_edit_keeps
    from relook.policy import Policy
    from relook.rollout import make_environment
    from relook.tasks import load_tasks

    cfg = load_config("tiny")
    env = make_environment(cfg)
    policy = Policy.from_pretrained(a.model)
    tasks = load_tasks(a.tasks or cfg.resolve(cfg.eval.tasks))[: a.n]
    gen = {"max_new_tokens": a.max_new_tokens or cfg.rollout.max_new_tokens, "seed": a.seed}
    infer.base(policy, tasks[:2], **gen)  # warm-up: first-call allocations, browser start
    env.step_many_sync(tasks[:2], ["<html><body>warm</body></html>"] * 2)

    # one pass is measured once; self-edit and critic-in-loop at one and at three rounds
    runs = {r: compare_modes(policy, tasks, env, modes, rounds=r, rollout_cfg=cfg.rollout, **gen)
            for modes, r in ((("base", "self-edit", "critic"), 1), (("self-edit", "critic"), 3))}
    base = runs[1]["base"]
    keeps = {f"rounds_{r}": self_edit_keeps({"base": base, **got}) for r, got in runs.items()}
    rows = [{"mode": mode, "rounds": 0 if mode == "base" else r, "seconds_per_task": s["seconds_per_task"],
             "valid_render_rate": s["valid_render_rate"], "critic_score_mean": s["critic_score_mean"]}
            for r, got in runs.items() for mode, s in got.items()]
    by = {(r["mode"], r["rounds"]): r["seconds_per_task"] for r in rows}
    ratios = {"self_edit_1_vs_base": by[("self-edit", 1)] / by[("base", 0)],
              "self_edit_3_vs_base": by[("self-edit", 3)] / by[("base", 0)],
              "critic_1_vs_self_edit_1": by[("critic", 1)] / by[("self-edit", 1)],
              "critic_3_vs_self_edit_3": by[("critic", 3)] / by[("self-edit", 3)]}
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}; model {a.model}; {len(tasks)} tasks")
    print(f"{'mode':10s} {'rounds':>6s} {'s/task':>8s} {'valid':>6s} {'score':>6s}")
    for r in rows:
        print(f"{r['mode']:10s} {r['rounds']:6d} {r['seconds_per_task']:8.3f} {r['valid_render_rate']:6.2f} "
              f"{r['critic_score_mean'] if r['critic_score_mean'] is not None else float('nan'):6.1f}")
    for k, v in ratios.items():
        print(f"{k}: {v:.2f}x")
    for k, v in keeps.items():
        print(f"{k}: {keeps_line(v)}")
    if a.json:
        Path(a.json).write_text(json.dumps({"rows": rows, "ratios": ratios, "self_edit_keeps": keeps,
                                            "n_tasks": len(tasks), "cores": os.cpu_count(), "model": a.model},
                                           indent=1))


if __name__ == "__main__":
    main()
