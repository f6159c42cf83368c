"""Where do a policy's trajectories stop, and do its revisions improve on the best so far?

Runs one GRPO-sized batch of ReLook episodes (training tasks, the config's rollout settings, the warm-started
policy) and reports why episodes stopped, the first attempts' scores, and each sampled revision's score against
the best before it: the per-try admission rate that caps how many turns Forced Optimization can admit.

    python benchmarks/revision_diag.py --config tiny --tasks 24 --json runs/revision_diag.json
    python benchmarks/revision_diag.py --config tiny --set rollout.temperature=0.7
"""
from __future__ import annotations

import argparse
import collections
import json
import random
import time

import torch

from relook.config import load_config
from relook.rollout import make_environment, run_episodes
from relook.tasks import load_tasks
from relook.train import episode_stats
from relook.warmstart import load_policy


def diagnose(eps) -> dict:
    """What GRPO's metrics say of these episodes (relook.train.episode_stats), and what they do not: why episodes
    stopped, first attempts' scores, and every sampled revision against the best before it."""
    st = episode_stats(eps)
    first = [e.turns[0] for e in eps]
    valid = [t for t in first if t.valid]
    # each sampled revision's critic score minus the best admitted before it (an invalid page counts 0; a try the
    # critic could not judge is not compared). FO admits on the reward, which is also 0 for a turn that breaks the
    # turn format, so "better" can exceed the admitted count.
    deltas = []
    for e in eps:
        best = None
        for t in e.turns:
            s = (t.score or 0.0) if t.valid else 0.0
            if t.turn > 0 and best is not None and t.score is not None:
                deltas.append(s - best)
            if t.admitted:
                best = s
    revs = [t for e in eps for t in e.turns if t.turn > 0]
    return {
        "episodes": len(eps),
        "mean_admitted_turns": st["mean_turns"],
        "stop_reasons": dict(collections.Counter(e.stop_reason for e in eps)),
        "first_valid_rate": st["first_turn_valid_rate"],
        "first_score_mean_valid": sum(t.score or 0 for t in valid) / max(1, len(valid)),
        "first_perfect": sum(t.score == 100.0 for t in valid),   # episodes that end at once on a perfect score
        "first_ended": dict(collections.Counter(t.stopped for t in first)),
        "revision_tries": len(revs),
        "revision_admitted": sum(t.admitted for t in revs),
        "per_try_admission": st["fo_admission_rate"] if revs else 0.0,   # GRPO's fo_admission_rate
        "revision_vs_best": {"better": sum(d > 0 for d in deltas), "equal": sum(d == 0 for d in deltas),
                             "worse": sum(d < 0 for d in deltas)},
        "tokens_per_turn": sum(t.n_tokens for e in eps for t in e.turns) / max(1, sum(len(e.turns) for e in eps)),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    ap.add_argument("--tasks", type=int, default=24, help="training tasks, each run num_generations times")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", default="")
    a = ap.parse_args(argv)
    cfg = load_config(a.config, a.set)
    policy = load_policy(cfg)
    torch.manual_seed(a.seed)
    tasks = random.Random(a.seed).sample(load_tasks(cfg.resolve(cfg.tasks)), a.tasks)
    group = [t for t in tasks for _ in range(cfg.train.num_generations)]
    t0, tm = time.time(), {}
    eps = run_episodes(policy, group, make_environment(cfg), cfg.rollout, timings=tm)
    out = {"config": cfg.name, "overrides": a.set, **diagnose(eps), "seconds": round(time.time() - t0, 1),
           "timings": {k: round(v, 1) for k, v in tm.items()}}
    print(json.dumps(out, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
