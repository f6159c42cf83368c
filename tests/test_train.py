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
    from relook.policy import load_policy
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
    for prompt, p, c, lp, m in zip(prompts, out["prompt_ids"], out["completion_ids"], out["logprobs"], out["env_mask"]):
        assert len(c) == len(lp) == len(m) and c[-1] == smoke_policy.eos_id    # ends on EOS
        assert len(c) <= cfg.rollout.max_completion_length
        assert set(m) <= {0, 1} and m[0] == 1                                   # starts with a policy turn
        assert p == smoke_policy.prompt_ids(prompt)                             # row i is prompt i
    rewards = relook_reward(prompts, [""] * n, relook_reward=out["relook_reward"])
    assert rewards == out["relook_reward"] and any(r is not None for r in rewards)
    assert all(r is None or 0.0 <= r <= 1.0 for r in rewards)
    # a positive reward needs a valid render, so the valid rate is at least the share of positive rewards
    assert sum((r or 0) > 0 for r in rewards) / n <= roll.last_stats["valid_render_rate"] <= 1.0
    assert (tmp_path / "chains").exists()
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
