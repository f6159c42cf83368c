"""One config object, backed by YAML (configs/*.yaml), every field overridable as `section.key=value`
from the CLI (`--set`) or from a notebook's papermill parameters.

    cfg = load_config("tiny", ["train.steps=10", "rollout.forced_optimization=false"])
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "configs"


def project_path(path: str | Path) -> Path:
    """A path of the project: absolute stays, relative is under the repository root. Run directories and the
    notebooks' run/out parameters mean the same folder whatever the working directory (notebooks run from
    notebooks/, `make train` from the root)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else ROOT / p


class ConfigError(ValueError):
    """An unknown key or a bad value; the message names the key."""


@dataclass
class PolicyConfig:
    model: str = ""                 # "" = the kit's tiny policy (warm-started, cached); else a HF id or local dir
    cache_dir: str = ".cache/relook"
    dtype: str = "float32"          # "bfloat16" on GPUs
    device: str = "auto"            # auto | cpu | cuda
    sampler: str = "auto"           # auto (fast on a CPU, generate on a GPU) | fast (relook.sampler) | generate (HF)
    lora: bool = False              # train a peft LoRA adapter instead of all weights
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_targets: list = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                                        "gate_proj", "up_proj", "down_proj"])
    # the tiny policy's architecture (Llama family, so LoRA target names match the paper's models)
    vocab_size: int = 2048
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 704
    max_positions: int = 2048


@dataclass
class WarmstartConfig:
    enabled: bool = True            # the tiny policy always needs it; a real checkpoint may be trained as it is
    seed: int = 0
    tasks: str = "data/tasks/train.jsonl"
    n_tasks: int = 0                # 0 = every task in the file
    demos_per_task: int = 3
    # first-attempt mix: invalid kinds, then flawed vs perfect (the rest). The paper's RL starts near 40% valid.
    p_no_code: float = 0.15
    p_blank: float = 0.2
    p_broken: float = 0.25
    p_perfect: float = 0.5          # of the valid first attempts (the rest carry one or two flaws)
    p_self_edit: float = 0.2        # revisions after the critic-free self-edit prompt instead of feedback
    p_fix: float = 0.7              # a revision fixes each flaw the feedback names with this probability
    p_self_fix: float = 0.3         # a self-edit (no feedback) fixes each flaw with this probability
    p_revision_invalid: float = 0.1   # a revision that breaks the page
    p_revision_flawed: float = 0.15   # a revision that slips a new flaw into a part that was right
    max_demo_turns: int = 3
    # every demonstrated turn asks for feedback, the last included: the environment ends an episode (perfect score,
    # max turns, Forced Optimization). False: a demo's last turn ends the conversation (end-of-turn token), so the
    # policy learns to stop by itself — which a small policy does at random, cutting trajectories short.
    always_ask: bool = False
    # each demo draws a look the task does not ask for (font family; the spacing of components that set a 16 px
    # margin) and its revisions keep it: a revision that writes the page afresh loses it, so the policy learns to
    # revise by editing the page it wrote
    vary_style: bool = False
    epochs: float = 6.0
    lr: float = 3e-3
    batch_size: int = 16
    grad_accum: int = 1             # micro-batches per optimizer step: batch_size x grad_accum sequences
    max_length: int = 1024


@dataclass
class RolloutConfig:
    max_turns: int = 2              # 1 = a single attempt; each extra turn is a revision round
    max_resamples: int = 10         # Forced Optimization: resample a non-improving revision up to K times
    forced_optimization: bool = True
    zero_invalid: bool = True       # the zero rule (off only for the ablation)
    critic: str = "checklist"       # checklist | text | mllm
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 400       # per turn
    max_completion_length: int = 1024
    max_feedback_tokens: int = 96
    # Forced Optimization's K resamples of a round are drawn in the same generate call as its first try: i.i.d.
    # draws from the same context, one call per round instead of up to K + 1, all at the round's token budget (one
    # by one, a later try may get a few more tokens as episodes leave the round); only the tries FO reaches are
    # rendered and judged. Meant for backends whose call costs per step rather than per sequence (vLLM; not
    # measured there). Off on 2 CPU cores, where it measured slower: every try is decoded, even those FO never reaches
    # (README, "Why episodes stop").
    batch_resamples: bool = False
    generate_batch_size: int = 32   # sequences per HF generate call (the vLLM engine ignores it)


@dataclass
class RenderSettings:
    timeout_s: float = 5.0          # the page's budget in CPU seconds (its share of the browser's CPU)
    max_wall_s: float = 0.0         # hard wall cap (0 = 6 x timeout_s); past it the render is an infra failure
    concurrency: int = 0            # 0 = the shared renderer (two renders per core)
    cdn_mirror: bool = True         # common CDN libraries and fonts served from the offline mirror
    reuse: bool = False             # training throughput: reuse contexts between pages (README: its isolation)


@dataclass
class CriticSettings:
    base_url: str = ""              # MLLM critic endpoint ("" = RELOOK_CRITIC_BASE_URL / OPENAI_BASE_URL)
    model: str = ""
    timeout: float = 60.0
    max_retries: int = 3
    concurrency: int = 8


@dataclass
class TrainConfig:
    steps: int = 40
    prompts_per_step: int = 8       # distinct tasks per step
    num_generations: int = 4        # GRPO group size
    # trajectories per rank per micro-batch (forward/backward): 0 = all of a rank's trajectories at once; else the
    # largest divisor of the per-rank count <= this, the rest by gradient accumulation (see batch_plan)
    per_device_batch: int = 0
    lr: float = 3e-4
    beta: float = 0.0               # KL to the reference (needs a saved reference or a LoRA adapter when > 0)
    epsilon: float = 0.2
    num_iterations: int = 1
    scale_rewards: str = "group"
    loss_type: str = "dapo"
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0       # AdamW's decoupled weight decay
    save_every: int = 10
    eval_every: int = 0             # 0 = evaluate only before and after
    chains_every: int = 5           # write sampled trajectories for the chain viewer every N steps
    gradient_checkpointing: bool = False
    bf16: bool = False
    use_vllm: bool = False          # GPU: sample turns with TRL's vLLM engine instead of HF generate
    vllm_mode: str = "colocate"     # colocate | server (trl vllm-serve)
    vllm_gpu_memory_utilization: float = 0.3


@dataclass
class EvalConfig:
    tasks: str = "data/tasks/eval.jsonl"
    n_tasks: int = 50
    mode: str = "base"              # base | self-edit | critic
    rounds: int = 3
    temperature: float = 1.0        # sampled with the eval seed (the tiny policy loops when greedy); 0 = greedy


@dataclass
class Config:
    name: str = "default"
    seed: int = 0
    out_dir: str = ""               # "" = runs/<name>; relative to the repository root (see run_dir)
    tasks: str = "data/tasks/train.jsonl"
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    warmstart: WarmstartConfig = field(default_factory=WarmstartConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    render: RenderSettings = field(default_factory=RenderSettings)
    critic: CriticSettings = field(default_factory=CriticSettings)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    # -- I/O
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.to_yaml())
        return p

    @property
    def run_dir(self) -> Path:
        """out_dir (default runs/<name>) under the repository root when relative: a notebook (cwd notebooks/) and
        `make train` (cwd the root) share runs/tiny. The CLI makes a user's relative --out absolute first."""
        return project_path(self.out_dir or f"runs/{self.name}")

    def resolve(self, path: str) -> Path:
        """Relative data paths resolve against the project root, so notebooks can run from notebooks/."""
        p = Path(path)
        return p if p.is_absolute() or p.exists() else ROOT / p

    # -- overrides
    def set(self, key: str, value: Any) -> "Config":
        """Set `section.key` (or a top-level key) from a Python value or a string (parsed as YAML)."""
        parts = key.strip().split(".")
        obj = self
        for i, part in enumerate(parts):
            fields = {f.name: f for f in dataclasses.fields(obj)}
            if part not in fields:
                where = ".".join(parts[:i]) or "config"
                close = difflib.get_close_matches(part, fields, n=1)
                hint = f" (did you mean {'.'.join(parts[:i] + close)}?)" if close else ""
                raise ConfigError(f"unknown key {key!r}: {where} has no field {part!r}{hint}")
            f = fields[part]
            if i == len(parts) - 1:
                if dataclasses.is_dataclass(getattr(obj, part)):
                    raise ConfigError(f"{key!r} is a section; set one of its keys, e.g. {key}.{dataclasses.fields(getattr(obj, part))[0].name}=...")
                setattr(obj, part, _coerce(key, value, _field_type(type(obj), part), getattr(obj, part)))
            else:
                obj = getattr(obj, part)
                if not dataclasses.is_dataclass(obj):
                    raise ConfigError(f"unknown key {key!r}: {'.'.join(parts[:i + 1])} is not a section")
        return self

    def apply(self, overrides) -> "Config":
        """Overrides as ["a.b=1", ...], a dict {"a.b": 1} or a nested dict {"a": {"b": 1}}."""
        if not overrides:
            return self
        if isinstance(overrides, str):
            overrides = [overrides]
        if isinstance(overrides, dict):
            for k, v in _flatten(overrides):
                self.set(k, v)
            return self
        for item in overrides:
            if not isinstance(item, str) or "=" not in item:
                raise ConfigError(f"override {item!r} is not of the form key=value")
            k, v = item.split("=", 1)
            self.set(k, v)
        return self


def _flatten(d: dict, prefix: str = ""):
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _flatten(v, key + ".")
        else:
            yield key, v


def _field_type(cls, name):
    hints = typing.get_type_hints(cls)
    return hints[name]


def _coerce(key: str, value: Any, typ, current: Any):
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value) if value.strip() != "" else ""
        except yaml.YAMLError:
            pass
    origin = typing.get_origin(typ)
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if typ is str:
        if value is None:
            return ""
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    if typ is list or origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return value
    return value


def _validate(cfg: Config) -> Config:
    checks = [
        (cfg.rollout.max_turns >= 1, "rollout.max_turns must be >= 1"),
        (cfg.rollout.max_resamples >= 0, "rollout.max_resamples must be >= 0"),
        (cfg.rollout.critic in ("checklist", "text", "mllm"), "rollout.critic must be checklist, text or mllm"),
        (cfg.rollout.temperature > 0, "rollout.temperature must be > 0"),
        (cfg.eval.temperature >= 0, "eval.temperature must be >= 0 (0 = greedy)"),
        (cfg.rollout.max_new_tokens > 0, "rollout.max_new_tokens must be > 0"),
        (cfg.rollout.max_completion_length >= cfg.rollout.max_new_tokens,
         "rollout.max_completion_length must be >= rollout.max_new_tokens"),
        (cfg.train.steps >= 0, "train.steps must be >= 0"),
        (cfg.train.num_generations >= 2, "train.num_generations must be >= 2 (GRPO compares within a group)"),
        (cfg.train.prompts_per_step >= 1, "train.prompts_per_step must be >= 1"),
        (cfg.warmstart.grad_accum >= 1, "warmstart.grad_accum must be >= 1"),
        (cfg.train.per_device_batch >= 0, "train.per_device_batch must be >= 0 (0 = a rank's whole share at once)"),
        (cfg.train.num_iterations >= 1, "train.num_iterations must be >= 1"),
        (cfg.train.lr > 0, "train.lr must be > 0"),
        (cfg.train.beta >= 0, "train.beta must be >= 0"),
        (cfg.train.weight_decay >= 0, "train.weight_decay must be >= 0"),
        (cfg.eval.mode in ("base", "self-edit", "critic"), "eval.mode must be base, self-edit or critic"),
        (cfg.render.timeout_s > 0, "render.timeout_s must be > 0"),
        (cfg.render.max_wall_s >= 0, "render.max_wall_s must be >= 0 (0 = 6 x timeout_s)"),
        (cfg.render.concurrency >= 0, "render.concurrency must be >= 0"),
        (cfg.policy.dtype in ("float32", "bfloat16", "float16"), "policy.dtype must be float32, bfloat16 or float16"),
        (cfg.policy.sampler in ("auto", "fast", "generate"), "policy.sampler must be auto, fast or generate"),
        (0 <= cfg.warmstart.p_no_code + cfg.warmstart.p_blank + cfg.warmstart.p_broken <= 1,
         "warmstart.p_no_code + p_blank + p_broken must be within [0, 1]"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(msg)
    return cfg


@dataclass(frozen=True)
class BatchPlan:
    """How one GRPO step's trajectories are spread over processes and micro-batches."""
    trajectories: int        # G = prompts_per_step x num_generations, per GRPO step, over all processes
    world_size: int          # W processes (one per GPU)
    per_rank: int            # n = G / W trajectories each process samples and trains on per GRPO step
    per_device_batch: int    # b: trajectories per forward/backward (TRL's per_device_train_batch_size)
    grad_accum: int          # n / b micro-batches per optimizer step (TRL's gradient_accumulation_steps)

    def summary(self) -> str:
        return (f"{self.trajectories} trajectories per GRPO step over {self.world_size} process(es): "
                f"{self.per_rank} per rank = per-device batch {self.per_device_batch} x gradient accumulation "
                f"{self.grad_accum}")


def batch_plan(train: "TrainConfig", world_size: int = 1) -> BatchPlan:
    """One GRPO step = one rollout of G = prompts_per_step x num_generations trajectories (TRL's
    generation_batch_size) = one optimizer step per num_iterations pass. Each of W processes samples and trains on
    n = G / W of them in micro-batches of b (the largest divisor of n not above train.per_device_batch; 0 = n), so
    gradient_accumulation_steps = n / b and TRL's steps_per_generation comes out as n / b too. ConfigError when W
    does not divide G."""
    g = train.prompts_per_step * train.num_generations
    if not isinstance(world_size, int) or world_size < 1:
        raise ConfigError(f"world size must be a positive integer, got {world_size!r}")
    if g % world_size:
        raise ConfigError(f"world size {world_size} does not divide the {g} trajectories per step "
                          f"(prompts_per_step {train.prompts_per_step} × num_generations {train.num_generations})")
    n = g // world_size
    cap = min(train.per_device_batch or n, n)
    b = max(d for d in range(1, cap + 1) if n % d == 0)
    return BatchPlan(trajectories=g, world_size=world_size, per_rank=n, per_device_batch=b, grad_accum=n // b)


def load_config(name_or_path: str | Path | None = None, overrides=None) -> Config:
    """A config by name (configs/<name>.yaml) or path, then overrides. Unknown keys and bad values raise
    ConfigError naming the key."""
    cfg = Config()
    if name_or_path:
        p = Path(name_or_path)
        if not p.suffix and not p.exists():
            p = CONFIG_DIR / f"{name_or_path}.yaml"
        if not p.is_file():
            names = ", ".join(sorted(q.stem for q in CONFIG_DIR.glob("*.yaml")))
            raise ConfigError(f"no config {str(name_or_path)!r} (known: {names})")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML ({str(e).splitlines()[0]})")
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: expected a mapping of sections")
        data.setdefault("name", p.stem)
        try:
            cfg.apply(data)
        except ConfigError as e:
            raise ConfigError(f"{p}: {e}")
    cfg.apply(overrides)
    return _validate(cfg)


# The paper's ablations, each the overrides that switch one mechanism off (notebook 07 trains them all from the
# same warm start and seed and judges them the same way).
ABLATIONS = {
    "full": [],
    "no_fo": ["rollout.forced_optimization=false"],     # take every revision, better or not
    "no_zero_rule": ["rollout.zero_invalid=false"],     # invalid renders scored by the critic like any page
    "text_critic": ["rollout.critic=text"],             # the critic reads the code, sees no screenshots
}


def ablation_config(name_or_path: str | Path | None, variant: str, overrides=None) -> Config:
    """`load_config` plus the overrides of one of ABLATIONS (after the caller's own)."""
    if variant not in ABLATIONS:
        raise ConfigError(f"no ablation {variant!r} (known: {', '.join(ABLATIONS)})")
    return load_config(name_or_path, list(overrides or []) + ABLATIONS[variant])


def config_hash(obj) -> str:
    import hashlib
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]
