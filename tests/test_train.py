"""GRPO on TRL: the rollout_func contract, the `relook train` CLI (metrics, checkpoints, --resume) on the smoke
config, and clear exits on bad arguments. The smoke policy is warm-started once (cached under .cache/relook)."""
import json
import math
import subprocess
import sys

import pytest

from relook.config import load_config

RELOOK = [sys.executable, "-m", "relook.cli"]
METRIC_KEYS = {"step", "reward_mean", "reward_std", "valid_render_rate", "critic_score_mean", "fo_admission_rate",
               "mean_turns", "resamples", "kl", "step_time"}


@pytest.fixture(scope="module")
def smoke_policy():
    from relook.warmstart import load_policy
    return load_policy(load_config("smoke"))


def test_rollout_func_returns_what_trl_needs(smoke_policy, tmp_path):
    from relook.rollout import make_environment
    from relook.tasks import load_tasks
    from relook.train import ReLookRollout, relook_reward
    cfg = load_config("smoke", ["train.chains_every=1"])
    tasks = load_tasks(cfg.resolve(cfg.tasks))[:2]
    roll = ReLookRollout(smoke_policy, tasks, make_environment(cfg), cfg, tmp_path)
    prompts = [t.prompt for t in tasks for _ in range(cfg.train.num_generations)]  # TRL repeats per group
    out = roll(prompts, None)
    assert {"prompt_ids", "completion_ids", "logprobs", "env_mask", "relook_reward"} <= out.keys()
    n = len(prompts)
    assert all(len(out[k]) == n for k in ("prompt_ids", "completion_ids", "logprobs", "env_mask", "relook_reward"))
    assert [e.id for e in roll.last_episodes] == [f"s0-r0-{i}" for i in range(len(prompts))]  # step, rank, index
    for e, prompt, p, c, lp, m in zip(roll.last_episodes, prompts, out["prompt_ids"], out["completion_ids"],
                                      out["logprobs"], out["env_mask"]):
        # ends with what the policy sampled last: a stop token (<get_feedback> or an end of turn), else the
        # length limit cut its last turn
        assert len(c) == len(lp) == len(m) and (c[-1] in smoke_policy.stop_ids or e.final.stopped == "length")
        assert len(c) <= cfg.rollout.max_completion_length
        assert set(m) <= {0, 1} and m[0] == 1                                   # starts with a policy turn
        assert p == smoke_policy.prompt_ids(prompt)                             # row i is prompt i
    rewards = relook_reward(prompts, [""] * n, relook_reward=out["relook_reward"])
    assert rewards == out["relook_reward"] and any(r is not None for r in rewards)
    assert all(r is None or 0.0 <= r <= 1.0 for r in rewards)
    # a positive reward needs a valid render, so the valid rate is at least the share of positive rewards
    assert sum((r or 0) > 0 for r in rewards) / n <= roll.last_stats["valid_render_rate"] <= 1.0
    st = roll.last_stats
    assert st["world_size"] == 1 and st["generate_calls_per_rank"][0] >= 1 and len(st["generate_calls_per_rank"]) == 1
    assert all(st[k] >= 0 for k in ("generate_s", "render_s", "critique_s")) and st["rollout_s"] >= st["generate_s"]
    chains = [json.loads(x) for x in (tmp_path / "chains" / "step00000" / "chains.jsonl").read_text().splitlines()]
    assert [c["id"] for c in chains] == [e.id for e in roll.last_episodes]
    with pytest.raises(KeyError, match="not a known task"):
        roll(["an unknown prompt"], None)


@pytest.mark.slow
def test_train_cli_writes_metrics_checkpoints_and_resumes(tmp_path):
    out = tmp_path / "run"
    p = subprocess.run(RELOOK + ["train", "--config", "smoke", "--out", str(out), "--set", "train.steps=2"],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2]
    for x in lines:
        assert METRIC_KEYS <= x.keys()
        assert 0.0 <= x["valid_render_rate"] <= 1.0 and x["step_time"] > 0
        assert x["reward_mean"] is None or not math.isnan(x["reward_mean"])
    assert (out / "checkpoint-2").is_dir() and (out / "policy" / "config.json").is_file()
    assert (out / "config.yaml").read_text().count("steps: 2") == 1
    # a "killed" run: continue from the last checkpoint to step 3; steps 1-2 are kept, not redone
    first = (out / "metrics.jsonl").read_text().splitlines()
    p = subprocess.run(RELOOK + ["train", "--config", "smoke", "--out", str(out), "--set", "train.steps=3",
                                 "--resume"], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    after = (out / "metrics.jsonl").read_text().splitlines()
    assert after[:2] == first and [json.loads(x)["step"] for x in after] == [1, 2, 3]
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    for x in map(json.loads, after):
        assert x["world_size"] == 1 and len(x["generate_calls_per_rank"]) == 1
        assert x["optimize_s"] >= 0 and x["rollout_s"] >= x["generate_s"] >= 0
    # --resume on a run that has all its steps: nothing is trained, and it says so
    p = subprocess.run(RELOOK + ["train", "--config", "smoke", "--out", str(out), "--set", "train.steps=3",
                                 "--resume"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "already has 3 of 3 GRPO steps (checkpoint-3); nothing to train" in p.stdout
    assert (out / "metrics.jsonl").read_text().splitlines() == after and not (out / "checkpoint-4").exists()


@pytest.mark.parametrize("args,msg", [
    (["--config", "smoke", "--set", "train.stepz=2"], "unknown key 'train.stepz'"),
    (["--config", "smoke", "--set", "train.steps=two"], "train.steps: expected an integer"),
    (["--config", "nope"], "no config 'nope'"),
    (["--config", "smoke", "--set", "nokeyvalue"], "not of the form key=value"),
])
def test_train_cli_bad_arguments_exit_2(args, msg, tmp_path):
    p = subprocess.run(RELOOK + ["train", "--out", str(tmp_path / "r")] + args, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2 and msg in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("world,per_device,accum", [(1, 2, 64), (2, 2, 32), (8, 2, 8)])
def test_check_builds_trl_args_for_the_paper_config(world, per_device, accum):
    """What `relook train --config paper --check --world-size N` builds: TRL's own checks pass as if N processes
    ran (bf16 and vLLM settings included, on this CPU machine), without a process group."""
    import torch.distributed as dist

    from relook.config import batch_plan
    from relook.train import check, grpo_args
    cfg = load_config("paper")
    args = grpo_args(cfg, batch_plan(cfg.train, world), as_if=True)
    assert args.world_size == world and args.generation_batch_size == 128
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (per_device, accum)
    # one rollout per optimizer step: TRL regenerates every steps_per_generation micro-batches = grad_accum
    assert args.steps_per_generation == accum and args.max_steps == cfg.train.steps * cfg.train.num_iterations
    assert args.bf16 and args.use_vllm
    line = check(cfg, world)
    assert f"world size {world}, per-device batch {per_device}, gradient accumulation {accum}, generation batch 128" \
        in line and "\n" not in line
    assert not dist.is_initialized()


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_check_cli(tmp_path):
    import os
    out = tmp_path / "r"
    p = subprocess.run(RELOOK + ["train", "--config", "paper", "--check", "--world-size", "8", "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert len(p.stdout.strip().splitlines()) == 1 and "world size 8, per-device batch 2, gradient accumulation 8" \
        in p.stdout and not out.exists()
    p = subprocess.run(RELOOK + ["train", "--config", "paper", "--check", "--world-size", "3", "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.strip() == ("relook: error: world size 3 does not divide the 128 "
                                                      "trajectories per step (prompts_per_step 16 × num_generations 8)")
    assert not out.exists()
    # the world size defaults to the launcher's; the check joins no process group (rank 1 never comes)
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(_free_port())}
    p = subprocess.run(RELOOK + ["train", "--config", "smoke", "--check", "--out", str(out)], capture_output=True,
                       text=True, timeout=120, env=env)
    assert p.returncode == 0 and "world size 2, per-device batch 2, gradient accumulation 1, generation batch 4" \
        in p.stdout, p.stderr[-2000:]
    # a real run launched as 2 processes with a group of 3 stops before it writes anything or waits for rank 1
    p = subprocess.run(RELOOK + ["train", "--config", "smoke", "--set", "train.num_generations=3", "--set",
                                 "train.prompts_per_step=1", "--out", str(out)], capture_output=True, text=True,
                       timeout=120, env=env)
    assert p.returncode == 2 and "world size 2 does not divide the 3 trajectories per step" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and not out.exists()
    p = subprocess.run(RELOOK + ["train", "--config", "smoke", "--world-size", "2"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2 and "--world-size goes with --check" in p.stderr
