"""GRPO training on TRL: `trl.GRPOTrainer` with a `rollout_func` that runs ReLook episodes.

    relook train --config configs/tiny.yaml [--set key=value ...] [--out runs/NAME] [--resume]
    relook train --config paper --check [--world-size 8]      # validate + build TRL's config, load nothing

One GRPO step = one rollout of G = prompts_per_step x num_generations trajectories (over all processes) = one
optimizer step per num_iterations pass over them. TRL hands each process its share of the prompts (already
repeated num_generations times); we run one ReLook episode per prompt (relook.rollout: multi-turn, Forced
Optimization, zero rule) and return prompt_ids, completion_ids, logprobs, env_mask (feedback tokens 0: no
gradient) and the trajectory reward as an extra field, which the single reward function passes through (None for
a critic failure, NaN to TRL: excluded, not zeroed).

Several processes (one per GPU; `accelerate launch --num_processes N ...` or `torchrun --nproc_per_node N ...`):
each samples G / N trajectories per step, trained in micro-batches of train.per_device_batch with gradient
accumulation (relook.config.batch_plan). The rollout keeps every rank's generate calls in step (an any-rank
all-reduce, `sync`), and gathers every rank's episodes so the metrics and chains cover the whole step; only the
main process writes the run directory's metrics.jsonl, chains.jsonl and config.yaml.

Run directory runs/<name>/: config.yaml, metrics.jsonl (one line per GRPO step), chains/ (sampled trajectories for
the chain viewer), checkpoint-N/ (resumable with --resume), policy/ (the trained model), eval_*.json.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from relook.config import BatchPlan, Config, ConfigError, batch_plan
from relook.distributed import LAUNCHER_VARS, env_world_size, gather_all, make_sync, rank_and_world


# ------------------------------------------------------------------------------------------- rollout
def episode_summary(e) -> dict:
    """What episode_stats needs of an episode (small: gathered from every rank at every step)."""
    f = e.final
    return {"reward": e.reward, "final_valid": bool(f is not None and f.valid),
            "final_reward": None if f is None else f.reward,
            "first_valid": bool(e.turns and e.turns[0].valid),
            "revisions_admitted": [bool(t.admitted) for t in e.turns if t.turn > 0],
            "turns": len(e.admitted), "resamples": e.resamples, "completion_tokens": len(e.completion_ids),
            "infra": sum(bool(t.infra) for t in e.turns)}


def episode_stats(eps) -> dict:
    """What one step's trajectories say: the figures the paper tracks. Episodes or episode_summary dicts."""
    ss = [x if isinstance(x, dict) else episode_summary(x) for x in eps]
    n = len(ss)
    rewards = [s["reward"] for s in ss if s["reward"] is not None]
    revisions = [a for s in ss for a in s["revisions_admitted"]]
    scores = [100.0 * s["final_reward"] for s in ss if s["final_reward"] is not None]
    mean = sum(rewards) / len(rewards) if rewards else float("nan")
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / len(rewards)) if rewards else float("nan")
    return {
        "reward_mean": mean, "reward_std": std,
        "valid_render_rate": sum(s["final_valid"] for s in ss) / n,
        "first_turn_valid_rate": sum(s["first_valid"] for s in ss) / n,
        "critic_score_mean": sum(scores) / len(scores) if scores else float("nan"),
        "fo_admission_rate": (sum(revisions) / len(revisions)) if revisions else float("nan"),
        "mean_turns": sum(s["turns"] for s in ss) / n,
        "resamples": sum(s["resamples"] for s in ss) / n,
        "critic_failures": sum(1 for s in ss if s["reward"] is None) - sum(bool(s.get("infra")) for s in ss
                                                                         if s["reward"] is None),
        "infra_failures": sum(s.get("infra", 0) for s in ss),   # sampled turns whose render failed through our fault
        "completion_tokens": sum(s["completion_tokens"] for s in ss) / n,
    }


class ReLookRollout:
    """The `rollout_func` for GRPOTrainer: prompts (repeated per group) -> ReLook episodes -> TRL's fields.
    TRL calls it on every rank once per GRPO step with that rank's share of the prompts."""

    def __init__(self, policy, tasks, env, cfg: Config, run_dir: Path):
        self.policy, self.env, self.cfg, self.run_dir = policy, env, cfg, Path(run_dir)
        self.by_prompt = {t.prompt: t for t in tasks}
        self.last_stats: dict = {}      # of the last step, over ALL ranks' episodes
        self.last_episodes: list = []   # this rank's episodes of the last step
        self.calls = 0
        self.offset = 0  # rollouts done before a resume

    def __call__(self, prompts, trainer=None) -> dict:
        from relook.rollout import run_episodes, write_chain_records
        t0 = time.perf_counter()
        tasks = []
        for p in prompts:
            text = p if isinstance(p, str) else p[-1]["content"]  # plain or conversational prompts
            if text not in self.by_prompt:
                raise KeyError(f"rollout got a prompt that is not a known task: {text[:80]!r}")
            tasks.append(self.by_prompt[text])
        if trainer is not None and getattr(trainer, "use_vllm", False):
            self.policy.vllm = trainer.vllm_generation  # sample turns with TRL's vLLM engine (weights synced by TRL)
        rank, world = rank_and_world()
        step = self.calls + self.offset
        every = self.cfg.train.chains_every
        record = self.run_dir / "chains" / f"step{step:05d}" if every and step % every == 0 else None
        timings: dict = {}
        eps = run_episodes(self.policy, tasks, self.env, self.cfg.rollout, record_dir=record,
                           ids=[f"s{step}-r{rank}-{i}" for i in range(len(tasks))], sync=make_sync(),
                           timings=timings, write_chains=False)  # screenshots saved per rank; chains below
        self.calls += 1
        self.last_episodes = eps
        # one gather per step on every rank (the decision to record depends on the step only: the same everywhere)
        parts = gather_all({"summaries": [episode_summary(e) for e in eps], "timings": timings,
                            "rollout_s": time.perf_counter() - t0,
                            "records": [e.to_record() for e in eps] if record is not None else None})
        if record is not None and rank == 0:
            write_chain_records(record, [r for p in parts for r in p["records"]])
        tm = [p["timings"] for p in parts]
        self.last_stats = {
            **episode_stats([s for p in parts for s in p["summaries"]]),
            "world_size": world, "generate_calls_per_rank": [int(t.get("generate_calls", 0)) for t in tm],
            # per-rank wall times; the step waits for the slowest rank, so the max over ranks is what it cost
            **{k: max(float(t.get(k, 0.0)) for t in tm) for k in ("generate_s", "render_s", "critique_s")},
            "rollout_s": max([time.perf_counter() - t0] + [p["rollout_s"] for p in parts])}
        return {"prompt_ids": [e.prompt_ids for e in eps],
                "completion_ids": [e.completion_ids for e in eps],
                "logprobs": [e.logprobs for e in eps],
                "env_mask": [e.env_mask for e in eps],
                "relook_reward": [e.reward for e in eps],
                "relook_valid": [bool(e.final and e.final.valid) for e in eps]}


def relook_reward(prompts, completions, relook_reward=None, **kwargs):
    """The trajectory reward computed in the rollout (zero rule + FO), passed through; None stays None."""
    return list(relook_reward)


def _metrics_callback(rollout: ReLookRollout, path: Path, t_start: float, log=None):
    """Writes metrics.jsonl (main process only); with `log`, also one text line per GRPO step (a notebook's HTML
    progress bar does not reach a papermill console)."""
    from transformers import TrainerCallback

    class Metrics(TrainerCallback):
        def __init__(self):
            self.t_last = time.perf_counter()
            self.written = 0

        def on_log(self, args, state, control, logs=None, **kw):
            # one line per rollout (a GRPO step): with num_iterations > 1 several optimizer steps share it
            if not logs or "loss" not in logs or not rollout.last_stats or rollout.calls == self.written:
                return
            self.written = rollout.calls
            now = time.perf_counter()
            step_time = now - self.t_last
            self.t_last = now
            if not state.is_world_process_zero:
                return
            rec = {"step": rollout.calls + rollout.offset, "optimizer_step": state.global_step, **rollout.last_stats,
                   "loss": logs.get("loss"), "kl": logs.get("kl"), "grad_norm": logs.get("grad_norm"),
                   "learning_rate": logs.get("learning_rate"), "step_time": step_time,
                   "optimize_s": max(0.0, step_time - rollout.last_stats.get("rollout_s", 0.0)),
                   "elapsed": now - t_start}
            with path.open("a") as f:
                f.write(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v)
                                    for k, v in rec.items()}) + "\n")
            if log is not None:
                fmt = lambda k, f: "-" if rec.get(k) is None else format(rec[k], f)  # noqa: E731
                log(f"train: step {rec['step']}/{rollout.cfg.train.steps} reward {fmt('reward_mean', '.3f')} "
                    f"valid {fmt('valid_render_rate', '.2f')} score {fmt('critic_score_mean', '.1f')} "
                    f"FO-admit {fmt('fo_admission_rate', '.2f')} ({rec['step_time']:.0f}s)")
    return Metrics()


# ------------------------------------------------------------------------------------------- TRL's config
def _as_if_world_size(config_cls, world_size: int):
    """A GRPOConfig that builds (TRL's and transformers' checks included) as if `world_size` processes ran, without
    creating accelerate's distributed state or a process group: TrainingArguments reads the world size from
    `self.distributed_state` (set up by the `_setup_devices` cached property, which `__post_init__` triggers), and
    GRPOConfig.__post_init__ reads `self.world_size`; both are overridden here."""
    from functools import cached_property

    import torch

    class AsIfWorld(config_cls):
        @cached_property
        def _setup_devices(self):
            self.distributed_state = None
            self._n_gpu = 0
            return torch.device("cpu")

        @property
        def world_size(self):
            return world_size
    return AsIfWorld


def grpo_args(cfg: Config, plan: BatchPlan, as_if: bool = False):
    """TRL's GRPOConfig for this config and batch plan. Building it sets up accelerate's distributed state (and
    the process group when a launcher started several processes), and with DeepSpeed ZeRO-3 (`deepspeed` or
    accelerate's ACCELERATE_USE_DEEPSPEED) the HfDeepSpeedConfig that makes from_pretrained use zero.Init: so it is
    built before the model is loaded. `as_if`: build for plan.world_size processes without any of that (--check)."""
    import torch
    from trl import GRPOConfig

    tc, iters = cfg.train, cfg.train.num_iterations
    cls = _as_if_world_size(GRPOConfig, plan.world_size) if as_if else GRPOConfig
    return cls(
        # train.steps counts GRPO steps (rollouts); each is reused for num_iterations optimizer steps. One rollout
        # of G trajectories = generation_batch_size; TRL derives steps_per_generation = G / (b x W) = grad_accum,
        # i.e. one rollout per optimizer step (per pass), as in a single process.
        output_dir=str(cfg.run_dir), max_steps=tc.steps * iters, learning_rate=tc.lr,
        per_device_train_batch_size=plan.per_device_batch, gradient_accumulation_steps=plan.grad_accum,
        num_generations=tc.num_generations, generation_batch_size=plan.trajectories,
        max_completion_length=cfg.rollout.max_completion_length, temperature=cfg.rollout.temperature,
        top_p=cfg.rollout.top_p, beta=tc.beta, epsilon=tc.epsilon, num_iterations=iters,
        scale_rewards=tc.scale_rewards, loss_type=tc.loss_type, max_grad_norm=tc.max_grad_norm,
        weight_decay=tc.weight_decay,
        logging_steps=1, save_strategy="steps", save_steps=max(1, tc.save_every) * iters, save_total_limit=2,
        seed=cfg.seed, data_seed=cfg.seed, bf16=tc.bf16, report_to=[], remove_unused_columns=False,
        activation_checkpointing=tc.gradient_checkpointing,  # transformers 5's name for gradient checkpointing
        # no GPU (or policy.device cpu): accelerate's CPU path, gloo between processes
        use_cpu=not torch.cuda.is_available() or cfg.policy.device == "cpu",
        dataloader_num_workers=0, disable_tqdm=False, shuffle_dataset=True, lr_scheduler_type="constant",
        mask_truncated_completions=False, use_vllm=tc.use_vllm,
        **({"vllm_mode": tc.vllm_mode, "vllm_gpu_memory_utilization": tc.vllm_gpu_memory_utilization}
           if tc.use_vllm else {}))


def _check_tasks(cfg: Config):
    from relook.tasks import TaskFormatError, load_tasks
    path = cfg.resolve(cfg.tasks)
    if not path.is_file():
        raise ConfigError(f"tasks: no such file {cfg.tasks}")
    try:
        tasks = load_tasks(path)
    except TaskFormatError as e:
        raise ConfigError(f"tasks: {e}")
    if len(tasks) < cfg.train.prompts_per_step:
        raise ConfigError(f"tasks: {cfg.tasks} has {len(tasks)} tasks, fewer than train.prompts_per_step "
                          f"{cfg.train.prompts_per_step}")
    return tasks


def _check_model(cfg: Config) -> None:
    """A policy.model that names no usable checkpoint stops the run before anything is written."""
    if cfg.policy.model:
        from relook.checkpoints import ModelSpecError, validate
        try:
            validate(cfg.policy.model)
        except ModelSpecError as e:
            raise ConfigError(str(e)) from None


def check(cfg: Config, world_size: int | None = None) -> str:
    """`relook train --check`: validate the config and build TRL's GRPOConfig for `world_size` processes (default:
    the launcher's, else 1) without loading a model, touching the run directory or starting a process group.
    Returns a one-line summary; raises ConfigError with a one-line reason."""
    import warnings

    import torch
    from transformers.utils import logging as hf_logging

    plan = batch_plan(cfg.train, env_world_size() if world_size is None else world_size)
    _check_tasks(cfg)
    from relook.checkpoints import hub_cache_path, is_hub_id
    model_note = ""
    if is_hub_id(cfg.policy.model) and hub_cache_path(cfg.policy.model) is None:
        # a GPU config's checkpoint, downloaded on the machine that trains: only its name can be checked here
        model_note = f"; policy.model {cfg.policy.model} is not on this machine (not checked)"
    else:
        _check_model(cfg)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            args = grpo_args(cfg, plan, as_if=True)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"TRL rejects the training arguments: {str(e).splitlines()[0]}")
    finally:
        hf_logging.set_verbosity(verbosity)
    got = (args.world_size, args.per_device_train_batch_size, args.gradient_accumulation_steps,
           args.generation_batch_size, args.steps_per_generation)
    want = (plan.world_size, plan.per_device_batch, plan.grad_accum, plan.trajectories, plan.grad_accum)
    if got != want:  # TRL derived something else than the plan: a version change to look at before a GPU run
        raise ConfigError(f"TRL derived (world size, per-device batch, grad accumulation, generation batch, "
                          f"steps_per_generation) = {got}, expected {want}")
    note = ""
    if args.use_cpu and not torch.cuda.is_available() and (cfg.train.bf16 or cfg.train.use_vllm):
        note = (" (built with use_cpu: no GPU on this machine, so transformers' bf16-needs-a-GPU check and "
                "vLLM's presence were not checked)")
    tc = cfg.train
    return (f"{cfg.name}: would train: world size {plan.world_size}, per-device batch {plan.per_device_batch}, "
            f"gradient accumulation {plan.grad_accum}, generation batch {plan.trajectories} "
            f"({tc.prompts_per_step} prompts x {tc.num_generations} generations, {plan.per_rank} per rank), "
            f"{tc.steps} GRPO steps = {args.max_steps} optimizer steps, bf16 {bool(args.bf16)}, "
            f"vLLM {bool(args.use_vllm)}{note}{model_note}")


# ------------------------------------------------------------------------------------------- training
def last_checkpoint(run_dir: Path) -> Path | None:
    cks = sorted(Path(run_dir).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return cks[-1] if cks else None


def prepare_policy_files(cfg: Config) -> None:
    """Build what load_policy would build and cache (the warm start; a checkpoint conversion), loading nothing
    for training. `python -m relook.train prepare CONFIG.yaml` runs it in a single-process child."""
    from relook.checkpoints import cache_root, warm_path
    path = warm_path(cfg)
    if path is None:
        from relook.checkpoints import resolve
        resolve(cfg.policy.model, cache_root(cfg))
    elif not (path / "config.json").exists():
        from relook.warmstart import warmstart
        warmstart(cfg)


def _prepare_policy_first(cfg: Config, state, log) -> None:
    """Several processes: the local main process builds the policy's cache (warm start, conversion) while the
    others wait, so two ranks never build the same cache. It does so in a child process without the launcher's
    variables: the warm start's own Trainer, run in this process, would join the process group and wait for ranks
    that are waiting here. Then every rank loads the model together (zero.Init under ZeRO-3 is a collective)."""
    from relook.checkpoints import warm_path
    with state.local_main_process_first():
        if not state.is_local_main_process:
            return
        path = warm_path(cfg)
        if path is not None and (path / "config.json").exists():
            return
        log("train: building the policy's cache (warm start / conversion) on the main process")
        with tempfile.TemporaryDirectory() as d:
            cfg.save(Path(d) / "config.yaml")
            env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}  # a single process (cuda:0)
            subprocess.run([sys.executable, "-m", "relook.train", "prepare", str(Path(d) / "config.yaml")],
                           env=env, check=True)


def _resume_point(cfg: Config, resume: bool, log) -> tuple[Path | None, int]:
    """(checkpoint to resume from, GRPO steps it holds)."""
    run_dir = cfg.run_dir
    ckpt = last_checkpoint(run_dir) if resume and run_dir.is_dir() else None
    if resume and ckpt is None:
        log(f"train: --resume but no checkpoint in {run_dir}; starting from the warm start")
    done = int(ckpt.name.split("-")[-1]) // cfg.train.num_iterations if ckpt is not None else 0
    return ckpt, done


def train(cfg: Config, resume: bool = False, log=print) -> Path:
    """Warm-start (or load) the policy, run GRPO, save the trained policy; returns the run directory.
    Launched as N processes, every process calls it; bad settings raise ConfigError before anything is written."""
    import torch
    from accelerate import PartialState
    from datasets import Dataset
    from trl import GRPOTrainer

    from relook.warmstart import load_policy
    from relook.rollout import make_environment

    run_dir = cfg.run_dir
    tc = cfg.train
    plan = batch_plan(tc, env_world_size())          # ConfigError (world size vs. group) before any write
    tasks = _check_tasks(cfg)
    _check_model(cfg)
    if tc.use_vllm:  # a missing vLLM stops the run before anything is written; CPU defaults before TRL's engine
        from relook.engine import check_vllm
        check_vllm(cfg.policy.dtype)
    ckpt, done = _resume_point(cfg, resume, log if int(os.environ.get("RANK", 0)) == 0 else (lambda *_: None))
    if ckpt is not None and done >= tc.steps:
        if int(os.environ.get("RANK", 0)) == 0:
            log(f"train: {run_dir} already has {done} of {tc.steps} GRPO steps ({ckpt.name}); nothing to train"
                + ("" if (run_dir / "policy").is_dir() else f" (no policy/ saved: the weights are in {ckpt})"))
        return run_dir

    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() in ("1", "true", "yes"):
        # policy/ must be a from_pretrained directory: ZeRO-3 gathers the shards into 16-bit weights on save
        # (accelerate's default is false: save_model would then write a DeepSpeed checkpoint instead)
        os.environ.setdefault("ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL", "true")
    # TRL's config first: it sets up the process group (several processes), this rank's GPU, and under ZeRO-3
    # the HfDeepSpeedConfig that from_pretrained needs to create the model partitioned (zero.Init): accelerate's
    # DeepSpeedPlugin (ACCELERATE_USE_DEEPSPEED, set by `accelerate launch --use_deepspeed`) keeps it alive, and
    # transformers.integrations.is_deepspeed_zero3_enabled() reads it in from_pretrained
    args = grpo_args(cfg, plan)
    state = PartialState()
    if args.world_size != plan.world_size:
        raise ConfigError(f"the launcher says {plan.world_size} processes, accelerate set up {args.world_size}")
    main = state.is_main_process
    say = log if main else (lambda *_: None)
    metrics_path = run_dir / "metrics.jsonl"
    with state.main_process_first():                 # the run directory: main process only, others wait
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            if ckpt is not None and metrics_path.exists():  # drop steps after the checkpoint: they will be redone
                keep = [ln for ln in metrics_path.read_text().splitlines() if ln and json.loads(ln)["step"] <= done]
                metrics_path.write_text("".join(ln + "\n" for ln in keep))
            elif ckpt is None and metrics_path.exists():
                metrics_path.unlink()
            cfg.save(run_dir / "config.yaml")
    if plan.world_size > 1:
        say(f"train: {plan.summary()} ({state.distributed_type}, backend {state.backend})")
        _prepare_policy_first(cfg, state, say)

    torch.manual_seed(cfg.seed)
    policy = load_policy(cfg, build=plan.world_size == 1)  # several processes: the cache was built above
    if tc.beta > 0 and not cfg.policy.lora:
        ref = Path(getattr(policy.model.config, "_name_or_path", "") or "")
        if not (ref / "config.json").exists() and not cfg.policy.model:
            raise ValueError("train.beta > 0 needs a reference model: a saved checkpoint path or policy.lora=true")
    from transformers.integrations import is_deepspeed_zero3_enabled
    fsdp = bool(args.fsdp) or os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true", "yes")
    if plan.world_size > 1 and (is_deepspeed_zero3_enabled() or fsdp):
        # sharded weights: every forward is a collective, so HF generate must keep running forwards on a rank whose
        # sequences are done until all ranks are (synced_gpus); the rollout's `sync` keeps the calls in step
        policy.synced_gpus = True
    env = make_environment(cfg)
    rollout = ReLookRollout(policy, tasks, env, cfg, run_dir)
    rollout.offset = done
    dataset = Dataset.from_list([{"prompt": t.prompt, "task_id": t.id} for t in tasks])
    trainer = GRPOTrainer(model=policy.model, reward_funcs=relook_reward, args=args, train_dataset=dataset,
                          processing_class=policy.tokenizer, rollout_func=rollout)
    if tc.use_vllm:  # relook's weight push: peft tag rows under vLLM's names, vLLM's CPU backend
        from relook.engine import attach
        attach(trainer.vllm_generation)
    policy.model = trainer.model  # generation always uses the weights being trained
    from transformers.utils import is_in_notebook
    trainer.add_callback(_metrics_callback(rollout, metrics_path, time.perf_counter(), say if is_in_notebook() else None))
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    # every rank calls it (ZeRO-3 gathers the shards); the main process writes model + tokenizer
    trainer.save_model(str(run_dir / "policy"))
    if main:
        policy.tokenizer.save_pretrained(run_dir / "policy")
        say(f"train: saved the trained policy to {run_dir / 'policy'}")
        if (run_dir / "chains").exists():
            from relook.viz import write_gallery
            say(f"train: chain gallery at {write_gallery(run_dir / 'chains', run_dir / 'gallery.html', title=f'{cfg.name}: training chains')}")
    state.wait_for_everyone()
    return run_dir


def read_metrics(run_dir) -> list[dict]:
    p = Path(run_dir) / "metrics.jsonl"
    return [json.loads(ln) for ln in p.read_text().splitlines() if ln.strip()] if p.exists() else []


def run_summary(rows: list[dict]) -> dict:
    """Means over a run's GRPO steps (metrics.jsonl rows): how multi-turn its trajectories were, how often Forced
    Optimization admitted a revision, and where a step's time went. generate_s is the sampling wall time; render_s
    and critique_s split the environment's wall time in proportion to the per-page times (renders and critiques
    of a batch overlap); optimize_s is the rest of the step (TRL's forward/backward passes and optimizer)."""
    def mean(k):
        xs = [r[k] for r in rows if r.get(k) is not None]
        return round(sum(xs) / len(xs), 3) if xs else None
    return {"steps": len(rows), **{k: mean(k) for k in ("mean_turns", "fo_admission_rate", "valid_render_rate",
                                                          "first_turn_valid_rate", "reward_mean", "step_time",
                                                          "generate_s", "render_s", "critique_s", "optimize_s")}}


if __name__ == "__main__":  # the single-process child of _prepare_policy_first
    if len(sys.argv) == 3 and sys.argv[1] == "prepare":
        from relook.config import load_config
        prepare_policy_files(load_config(sys.argv[2]))
    else:
        sys.exit("usage: python -m relook.train prepare CONFIG.yaml")
