"""GRPO training on TRL: `trl.GRPOTrainer` with a `rollout_func` that runs ReLook episodes.

    relook train --config configs/tiny.yaml [--set key=value ...] [--out runs/NAME] [--resume]

Per optimizer step, TRL hands the rollout the prompts (already repeated num_generations times); we run one ReLook
episode per prompt (relook.rollout: multi-turn, Forced Optimization, zero rule) and return prompt_ids,
completion_ids, logprobs, env_mask (feedback tokens 0: no gradient) and the trajectory reward as an extra field,
which the single reward function passes through (None for a critic failure, NaN to TRL: excluded, not zeroed).

Run directory runs/<name>/: config.yaml, metrics.jsonl (one line per step), chains/ (sampled trajectories for
the chain viewer), checkpoint-N/ (resumable with --resume), policy/ (the trained model), eval_*.json.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from relook.config import Config


def episode_stats(eps) -> dict:
    """What one step's trajectories say: the figures the paper tracks."""
    n = len(eps)
    finals = [e.final for e in eps]
    rewards = [e.reward for e in eps if e.reward is not None]
    revisions = [t for e in eps for t in e.turns if t.turn > 0]
    scores = [100.0 * f.reward for f in finals if f is not None and f.reward is not None]
    mean = sum(rewards) / len(rewards) if rewards else float("nan")
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / len(rewards)) if rewards else float("nan")
    return {
        "reward_mean": mean, "reward_std": std,
        "valid_render_rate": sum(1 for f in finals if f is not None and f.valid) / n,
        "first_turn_valid_rate": sum(1 for e in eps if e.turns and e.turns[0].valid) / n,
        "critic_score_mean": sum(scores) / len(scores) if scores else float("nan"),
        "fo_admission_rate": (sum(t.admitted for t in revisions) / len(revisions)) if revisions else float("nan"),
        "mean_turns": sum(len(e.admitted) for e in eps) / n,
        "resamples": sum(e.resamples for e in eps) / n,
        "critic_failures": sum(1 for e in eps if e.reward is None),
        "completion_tokens": sum(len(e.completion_ids) for e in eps) / n,
    }


class ReLookRollout:
    """The `rollout_func` for GRPOTrainer: prompts (repeated per group) -> ReLook episodes -> TRL's fields."""

    def __init__(self, policy, tasks, env, cfg: Config, run_dir: Path):
        self.policy, self.env, self.cfg, self.run_dir = policy, env, cfg, Path(run_dir)
        self.by_prompt = {t.prompt: t for t in tasks}
        self.last_stats: dict = {}
        self.calls = 0
        self.offset = 0  # rollouts done before a resume

    def __call__(self, prompts, trainer=None) -> dict:
        t0 = time.perf_counter()
        tasks = []
        for p in prompts:
            text = p if isinstance(p, str) else p[-1]["content"]  # plain or conversational prompts
            if text not in self.by_prompt:
                raise KeyError(f"rollout got a prompt that is not a known task: {text[:80]!r}")
            tasks.append(self.by_prompt[text])
        if trainer is not None and getattr(trainer, "use_vllm", False):
            self.policy.vllm = trainer.vllm_generation  # sample turns with TRL's vLLM engine (weights synced by TRL)
        step = self.calls + self.offset
        every = self.cfg.train.chains_every
        record = self.run_dir / "chains" / f"step{step:05d}" if every and step % every == 0 else None
        ids = [f"s{step}-{i}" for i in range(len(tasks))]
        eps = __import__("relook.rollout", fromlist=["run_episodes"]).run_episodes(
            self.policy, tasks, self.env, self.cfg.rollout, record_dir=record, ids=ids)
        self.calls += 1
        self.last_stats = {**episode_stats(eps), "rollout_s": time.perf_counter() - t0}
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
    """Writes metrics.jsonl; with `log`, also one text line per GRPO step (a notebook's HTML progress bar does not
    reach a papermill console)."""
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
            rec = {"step": rollout.calls + rollout.offset, "optimizer_step": state.global_step, **rollout.last_stats,
                   "loss": logs.get("loss"), "kl": logs.get("kl"), "grad_norm": logs.get("grad_norm"),
                   "learning_rate": logs.get("learning_rate"), "step_time": now - self.t_last,
                   "elapsed": now - t_start}
            self.t_last = now
            with path.open("a") as f:
                f.write(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v)
                                    for k, v in rec.items()}) + "\n")
            if log is not None:
                fmt = lambda k, f: "-" if rec.get(k) is None else format(rec[k], f)  # noqa: E731
                log(f"train: step {rec['step']}/{rollout.cfg.train.steps} reward {fmt('reward_mean', '.3f')} "
                    f"valid {fmt('valid_render_rate', '.2f')} score {fmt('critic_score_mean', '.1f')} "
                    f"FO-admit {fmt('fo_admission_rate', '.2f')} ({rec['step_time']:.0f}s)")
    return Metrics()


def last_checkpoint(run_dir: Path) -> Path | None:
    cks = sorted(run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return cks[-1] if cks else None


def train(cfg: Config, resume: bool = False, log=print) -> Path:
    """Warm-start (or load) the policy, run GRPO, save the trained policy; returns the run directory."""
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from relook.policy import load_policy
    from relook.rollout import make_environment
    from relook.tasks import load_tasks

    run_dir = cfg.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = last_checkpoint(run_dir) if resume else None
    if resume and ckpt is None:
        log(f"train: --resume but no checkpoint in {run_dir}; starting from the warm start")
    metrics_path = run_dir / "metrics.jsonl"
    iters = max(1, cfg.train.num_iterations)
    done = int(ckpt.name.split("-")[-1]) // iters if ckpt is not None else 0  # GRPO steps in the checkpoint
    if ckpt is not None and metrics_path.exists():  # drop steps after the checkpoint: they will be redone
        keep = [ln for ln in metrics_path.read_text().splitlines() if ln and json.loads(ln)["step"] <= done]
        metrics_path.write_text("".join(ln + "\n" for ln in keep))
    elif not resume and metrics_path.exists():
        metrics_path.unlink()
    cfg.save(run_dir / "config.yaml")

    torch.manual_seed(cfg.seed)
    policy = load_policy(cfg)
    if cfg.train.beta > 0 and not cfg.policy.lora:
        ref = Path(getattr(policy.model.config, "_name_or_path", "") or "")
        if not (ref / "config.json").exists() and not cfg.policy.model:
            raise ValueError("train.beta > 0 needs a reference model: a saved checkpoint path or policy.lora=true")
    tasks = load_tasks(cfg.resolve(cfg.tasks))
    env = make_environment(cfg)
    rollout = ReLookRollout(policy, tasks, env, cfg, run_dir)
    rollout.offset = done
    tc = cfg.train
    group = tc.prompts_per_step * tc.num_generations
    args = GRPOConfig(
        # train.steps counts GRPO steps (rollouts); each is reused for num_iterations optimizer steps
        output_dir=str(run_dir), max_steps=tc.steps * iters, learning_rate=tc.lr, per_device_train_batch_size=group,
        gradient_accumulation_steps=1, num_generations=tc.num_generations, generation_batch_size=group,
        max_completion_length=cfg.rollout.max_completion_length, temperature=cfg.rollout.temperature,
        top_p=cfg.rollout.top_p, beta=tc.beta, epsilon=tc.epsilon, num_iterations=tc.num_iterations,
        scale_rewards=tc.scale_rewards, loss_type=tc.loss_type, max_grad_norm=tc.max_grad_norm,
        logging_steps=1, save_strategy="steps", save_steps=max(1, tc.save_every) * iters, save_total_limit=2,
        seed=cfg.seed, data_seed=cfg.seed, bf16=tc.bf16, report_to=[], remove_unused_columns=False,
        gradient_checkpointing=tc.gradient_checkpointing, use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0, disable_tqdm=False, shuffle_dataset=True, lr_scheduler_type="constant",
        mask_truncated_completions=False, use_vllm=tc.use_vllm,
        **({"vllm_mode": tc.vllm_mode, "vllm_gpu_memory_utilization": tc.vllm_gpu_memory_utilization}
           if tc.use_vllm else {}))
    dataset = Dataset.from_list([{"prompt": t.prompt, "task_id": t.id} for t in tasks])
    trainer = GRPOTrainer(model=policy.model, reward_funcs=relook_reward, args=args, train_dataset=dataset,
                          processing_class=policy.tokenizer, rollout_func=rollout)
    policy.model = trainer.model  # generation always uses the weights being trained
    from transformers.utils import is_in_notebook
    trainer.add_callback(_metrics_callback(rollout, metrics_path, time.perf_counter(), log if is_in_notebook() else None))
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    policy.save_pretrained(run_dir / "policy")
    log(f"train: saved the trained policy to {run_dir / 'policy'}")
    if (run_dir / "chains").exists():
        from relook.viz import write_gallery
        log(f"train: chain gallery at {write_gallery(run_dir / 'chains', run_dir / 'gallery.html', title=f'{cfg.name}: training chains')}")
    return run_dir


def read_metrics(run_dir) -> list[dict]:
    p = Path(run_dir) / "metrics.jsonl"
    return [json.loads(ln) for ln in p.read_text().splitlines() if ln.strip()] if p.exists() else []
