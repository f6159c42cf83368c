"""Two real processes (torchrun, gloo on CPU): `relook train` runs to the end without a deadlock, both ranks sample
trajectories, the main process alone writes the run directory, and the saved policy is the trained one."""
import json
import os
import subprocess
import sys

import pytest

from relook.config import load_config


@pytest.mark.slow
def test_two_ranks_train_the_smoke_config(tmp_path):
    out = tmp_path / "run"
    # a cache of its own: the main process warm-starts the policy while rank 1 waits (the path a fresh machine
    # takes); weight decay moves the weights even when no group's rewards differ (the smoke policy's pages are all
    # invalid, so GRPO's advantages are all zero), so the saved policy can be told from the warm start
    # zero_invalid off: invalid first pages are revised too, so the ranks go through revision rounds and resamples
    # per_device_batch 1: each rank's 2 trajectories go through as 2 micro-batches (gradient accumulation 2)
    overrides = ["train.steps=2", "train.chains_every=1", "train.weight_decay=0.1", "rollout.zero_invalid=false",
                 "train.per_device_batch=1",
                 f"policy.cache_dir={tmp_path / 'cache'}"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",  # a free port
           "-m", "relook.cli", "train", "--config", "smoke", "--out", str(out)]
    for o in overrides:
        cmd += ["--set", o]
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "CUDA_VISIBLE_DEVICES")}
    env["OMP_NUM_THREADS"] = "1"  # two processes on two cores
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=420, env=env)  # a deadlock fails here
    assert p.returncode == 0, (p.stdout[-3000:], p.stderr[-3000:])
    assert "over 2 process(es): 2 per rank = per-device batch 1 x gradient accumulation 2 (DistributedType.MULTI_CPU, " \
        "backend gloo)" in p.stdout                                                        # rank 0 says how it ran
    assert p.stdout.count("warmstart: saved to") == 1                                       # built once
    assert p.stdout.count("saved the trained policy") == 1                                  # ... and only rank 0

    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2]                     # one line per step, not one per rank
    assert [x["optimizer_step"] for x in lines] == [1, 2]           # one rollout per optimizer step
    for x in lines:
        assert x["world_size"] == 2 and len(x["generate_calls_per_rank"]) == 2
        assert min(x["generate_calls_per_rank"]) >= 1
        # the rollout keeps both ranks' generate calls in step (a collective backend would hang otherwise)
        assert x["generate_calls_per_rank"][0] == x["generate_calls_per_rank"][1]
        assert x["optimize_s"] >= 0 and x["rollout_s"] >= x["generate_s"] > 0

    # chains: gathered from both ranks and written once; ids name the rank, so they never collide
    for step in (0, 1):                                        # chains count steps from 0
        recs = [json.loads(x) for x in (out / "chains" / f"step{step:05d}" / "chains.jsonl").read_text().splitlines()]
        ids = [r["id"] for r in recs]
        assert len(ids) == len(set(ids)) == 4                       # 2 prompts x 2 generations, once each
        assert {i.split("-")[1] for i in ids} == {"r0", "r1"}
        assert all(i.startswith(f"s{step}-") for i in ids)
    assert (out / "config.yaml").is_file()

    # the saved policy is the trained one (the last checkpoint's weights), not the warm start
    from safetensors.torch import load_file

    from relook.checkpoints import default_tiny_path
    from relook.policy import Policy
    trained = Policy.from_pretrained(str(out / "policy")).model.state_dict()
    ckpt = load_file(str(out / "checkpoint-2" / "model.safetensors"))
    warm = load_file(str(default_tiny_path(load_config("smoke", overrides)) / "model.safetensors"))
    shared = sorted(set(ckpt) & set(trained))
    assert shared and all(bool((trained[k] == ckpt[k]).all()) for k in shared)
    assert any(not bool((ckpt[k] == warm[k]).all()) for k in shared if k in warm)
