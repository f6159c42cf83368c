"""One config object, YAML-backed, every field overridable; bad keys and values are clear errors."""
import pytest

from relook.config import ConfigError, load_config


def test_configs_load_and_override():
    for name in ("smoke", "tiny", "paper"):
        cfg = load_config(name)
        assert cfg.name == name
    cfg = load_config("tiny", ["train.steps=7", "rollout.forced_optimization=false", "policy.lora_targets=q_proj,v_proj",
                               "rollout.temperature=0.7"])
    assert cfg.train.steps == 7 and cfg.rollout.forced_optimization is False
    assert cfg.policy.lora_targets == ["q_proj", "v_proj"] and cfg.rollout.temperature == 0.7
    cfg = load_config("tiny", {"train": {"steps": 3}, "rollout.max_turns": 3})  # papermill-style dicts
    assert cfg.train.steps == 3 and cfg.rollout.max_turns == 3


@pytest.mark.parametrize("override,msg", [
    ("train.stepz=3", "unknown key 'train.stepz'"),
    ("trian.steps=3", "config has no field 'trian'"),
    ("train.steps=abc", "train.steps: expected an integer"),
    ("rollout.forced_optimization=maybe", "expected true/false"),
    ("train.num_generations=1", "num_generations must be >= 2"),
    ("rollout.critic=gpt", "rollout.critic must be"),
    ("train", "not of the form key=value"),
    ("train=3", "'train' is a section"),
])
def test_bad_overrides(override, msg):
    with pytest.raises(ConfigError, match=msg.replace("(", r"\(").replace("'", "'")):
        load_config("tiny", [override])


def test_unknown_config_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="no config 'nope'"):
        load_config("nope")
    p = tmp_path / "x.yaml"
    p.write_text("train: {steps: [}")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    p.write_text("train: {bogus: 1}")
    with pytest.raises(ConfigError, match="x.yaml: unknown key 'train.bogus'"):
        load_config(p)


def test_roundtrip(tmp_path):
    cfg = load_config("tiny", ["train.steps=11"])
    again = load_config(cfg.save(tmp_path / "c.yaml"))
    assert again.to_dict() == cfg.to_dict()


def test_ablation_configs_switch_one_mechanism_off():
    from relook.config import ABLATIONS, ablation_config
    full = ablation_config("smoke", "full", ["train.steps=3"])
    assert full.rollout.forced_optimization and full.rollout.zero_invalid and full.train.steps == 3
    no_fo = ablation_config("smoke", "no_fo", ["train.steps=3"])
    assert not no_fo.rollout.forced_optimization and no_fo.rollout.zero_invalid and no_fo.train.steps == 3
    assert not ablation_config("smoke", "no_zero_rule").rollout.zero_invalid
    assert ablation_config("smoke", "text_critic").rollout.critic == "text"
    assert set(ABLATIONS) == {"full", "no_fo", "no_zero_rule", "text_critic"}
    with pytest.raises(ConfigError, match="no ablation 'no_critic'"):
        ablation_config("smoke", "no_critic")


@pytest.mark.parametrize("world,per_device,accum", [(1, 2, 64), (2, 2, 32), (8, 2, 8), (16, 2, 4), (128, 1, 1)])
def test_batch_plan_paper(world, per_device, accum):
    from relook.config import batch_plan
    plan = batch_plan(load_config("paper").train, world)      # 16 prompts x 8 generations, per_device_batch 2
    assert (plan.trajectories, plan.world_size, plan.per_device_batch, plan.grad_accum) == (128, world, per_device, accum)
    assert plan.per_rank == 128 // world == plan.per_device_batch * plan.grad_accum


@pytest.mark.parametrize("p,g,cap,world,per_device,accum", [
    (2, 2, 0, 1, 4, 1),     # 0: a rank's whole share at once
    (2, 2, 0, 2, 2, 1),
    (3, 2, 4, 1, 3, 2),     # 6 per rank, at most 4 at once: the largest divisor is 3
    (5, 2, 4, 2, 1, 5),     # 5 per rank (prime): one at a time
    (6, 4, 100, 3, 8, 1),   # a cap above the share
])
def test_batch_plan_divisors(p, g, cap, world, per_device, accum):
    from relook.config import batch_plan
    cfg = load_config("smoke", [f"train.prompts_per_step={p}", f"train.num_generations={g}",
                                f"train.per_device_batch={cap}"])
    plan = batch_plan(cfg.train, world)
    assert (plan.per_device_batch, plan.grad_accum) == (per_device, accum)


def test_batch_plan_rejects_a_world_size_that_does_not_divide_the_group():
    from relook.config import batch_plan
    with pytest.raises(ConfigError, match=r"^world size 3 does not divide the 128 trajectories per step "
                                          r"\(prompts_per_step 16 × num_generations 8\)$"):
        batch_plan(load_config("paper").train, 3)
    with pytest.raises(ConfigError, match="world size must be a positive integer"):
        batch_plan(load_config("paper").train, 0)
    with pytest.raises(ConfigError, match="per_device_batch must be >= 0"):
        load_config("smoke", ["train.per_device_batch=-1"])


def test_run_dirs_resolve_from_the_repository_root_whatever_the_working_directory(tmp_path, monkeypatch):
    from relook.config import ROOT, project_path
    monkeypatch.chdir(tmp_path)                                # a notebook runs from notebooks/, say
    assert load_config("smoke").run_dir == ROOT / "runs" / "smoke"
    assert load_config("smoke", ["out_dir=runs/x"]).run_dir == ROOT / "runs" / "x"
    assert load_config("smoke", [f"out_dir={tmp_path / 'abs'}"]).run_dir == tmp_path / "abs"   # absolute stays
    assert project_path("runs/tiny") == ROOT / "runs" / "tiny" and project_path(tmp_path) == tmp_path


def test_cli_paths_are_relative_to_the_users_directory(tmp_path, monkeypatch):
    import relook.train
    from relook.cli import main
    from relook.config import ROOT
    seen = []
    monkeypatch.setattr(relook.train, "check", lambda cfg, world_size=None: seen.append(cfg.run_dir) or "checked")
    here = tmp_path.resolve()
    monkeypatch.chdir(here)
    assert main(["train", "--config", "smoke", "--check", "--out", "mine"]) == 0
    assert main(["train", "--config", "smoke", "--check", "--set", "out_dir=also/mine"]) == 0
    assert main(["train", "--config", "smoke", "--check"]) == 0               # no path typed: the project's runs/
    assert seen == [here / "mine", here / "also" / "mine", ROOT / "runs" / "smoke"]
