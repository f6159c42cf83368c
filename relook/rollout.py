"""ReLook episodes: generate -> render -> critique -> reward, then revision rounds under Forced Optimization.

For a batch of tasks, every round samples one turn per live episode (batched generation), renders and
critiques all of them concurrently, and admits a revision only if it beats the episode's best score so far;
a rejected revision is resampled up to K times, after which the episode stops reflecting. Only admitted turns
enter the trajectory:

    completion = turn_1 [<mllm_feedback> ... </mllm_feedback>] turn_2 ... turn_k <eos>
    env_mask   = 1...1   0 .............................. 0     1...1    1...1  1

Feedback tokens come from the environment: env_mask 0, so they never receive gradient. The trajectory ends on
the last admitted policy turn: its closing <get_feedback> becomes EOS, scored with the EOS log-probability of
that very sampling step, so TRL sees a terminated completion.

The zero rule also ends an episode whose first render is invalid, with reward 0. Otherwise, since a trajectory's
reward is its final admitted turn, a policy learns to throw its first turn away (junk, then ask the critic) and
let a revision collect the reward — the reward hacking the rule exists to stop (tiny GRPO runs without it drove
first-attempt validity to zero within a few steps). With `zero_invalid` off (the ablation) revisions go on.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from relook.critic import Critic, Critique, make_critic
from relook.render import RenderConfig, RenderResult, extract_code, get_renderer, run_sync
from relook.reward import accept, check_format, reward


# --------------------------------------------------------------------------------------------- environment
@dataclass
class EnvResult:
    text: str
    valid: bool
    error: str | None
    format_ok: bool
    score: float | None          # critic score 0-100 (None = critic failure)
    reward: float | None         # zero rule applied (None = critic failure)
    feedback: str
    render: RenderResult = field(repr=False, default=None)
    critique: Critique = field(repr=False, default=None)


class Environment:
    """The environment side of a turn: render the page, ask the critic, apply the zero rule."""

    def __init__(self, critic: Critic | str = "checklist", zero_invalid: bool = True,
                 render_config: RenderConfig | None = None, renderer=None, **critic_kw):
        self.critic = make_critic(critic, **critic_kw) if isinstance(critic, str) else critic
        self.zero_invalid = zero_invalid
        self.render_config = render_config
        self.renderer = renderer

    async def step(self, task, text: str) -> EnvResult:
        ok, why = check_format(text)
        renderer = self.renderer or get_renderer()
        res = await renderer.render(text, config=self.render_config)
        crit = await self.critic.critique(task, res)
        rew = reward(res, crit, zero_invalid=self.zero_invalid, format_ok=ok)
        feedback = crit.feedback if crit.score is not None else "The critic could not judge this page."
        if not ok and res.valid:
            feedback = f"Format problem: {why}.\n{feedback}"
        return EnvResult(text=text, valid=res.valid, error=res.error, format_ok=ok, score=crit.score, reward=rew,
                         feedback=feedback, render=res, critique=crit)

    async def step_many(self, tasks: Sequence, texts: Sequence[str]) -> list[EnvResult]:
        return list(await asyncio.gather(*(self.step(t, x) for t, x in zip(tasks, texts))))

    def step_many_sync(self, tasks, texts) -> list[EnvResult]:
        return run_sync(self.step_many(tasks, texts))


def make_environment(cfg) -> Environment:
    """The environment a config describes (critic kind, zero rule, render budget)."""
    kw = {}
    if cfg.rollout.critic == "mllm":
        kw = {"base_url": cfg.critic.base_url or None, "model": cfg.critic.model or None,
              "timeout": cfg.critic.timeout, "max_retries": cfg.critic.max_retries,
              "concurrency": cfg.critic.concurrency}
    return Environment(cfg.rollout.critic, zero_invalid=cfg.rollout.zero_invalid,
                       render_config=RenderConfig(timeout_s=cfg.render.timeout_s), **kw)


# --------------------------------------------------------------------------------------------- episodes
@dataclass
class TurnRecord:
    turn: int                    # revision round (0 = first attempt)
    attempt: int                 # 0 = first sample of the round, then resamples
    text: str
    code: str | None
    valid: bool
    error: str | None
    score: float | None
    reward: float | None
    feedback: str
    admitted: bool
    stopped: str                 # feedback | eos | length
    n_tokens: int
    shots: list[str] = field(default_factory=list)


@dataclass
class Episode:
    id: str
    task_id: str
    prompt: str
    prompt_ids: list[int]
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    turns: list[TurnRecord] = field(default_factory=list)
    best: float | None = None    # reward of the last admitted turn (the best so far under FO)
    done: bool = False
    stop_reason: str = ""
    feedback: str = ""           # of the last admitted turn: what the next revision reads

    @property
    def reward(self) -> float | None:
        return self.best

    @property
    def admitted(self) -> list[TurnRecord]:
        return [t for t in self.turns if t.admitted]

    @property
    def final(self) -> TurnRecord | None:
        adm = self.admitted
        return adm[-1] if adm else None

    @property
    def resamples(self) -> int:
        return sum(1 for t in self.turns if t.attempt > 0)

    def segments(self) -> list[tuple[bool, list[int]]]:
        """The completion cut where the loss mask flips: (True, ids) the policy wrote, (False, ids) the
        environment inserted (critic feedback), in order."""
        out: list[tuple[bool, list[int]]] = []
        for t, m in zip(self.completion_ids, self.env_mask):
            if out and out[-1][0] == bool(m):
                out[-1][1].append(t)
            else:
                out.append((bool(m), [t]))
        return out

    def to_record(self) -> dict:
        return {"id": self.id, "task_id": self.task_id, "prompt": self.prompt, "reward": self.best,
                "stop_reason": self.stop_reason, "n_completion_tokens": len(self.completion_ids),
                "n_policy_tokens": sum(self.env_mask), "turns": [asdict(t) for t in self.turns]}


def run_episodes(policy, tasks: Sequence, env: Environment, cfg, record_dir: str | Path | None = None,
                 ids: Sequence[str] | None = None, greedy: bool = False,
                 revise_invalid_first: bool | None = None) -> list[Episode]:
    """Run one ReLook episode per task (repeat tasks for a GRPO group). `cfg` is the rollout section.
    With `record_dir`, every sampled turn's screenshots are saved and the chains appended to chains.jsonl.
    `revise_invalid_first` (default: only when the zero rule is off) lets an invalid first attempt be revised:
    training must not (see above), but at test time the critic's "the page is blank" is worth acting on."""
    if revise_invalid_first is None:
        revise_invalid_first = not cfg.zero_invalid
    eps = [Episode(id=(ids[i] if ids else f"ep{i}"), task_id=t.id, prompt=t.prompt, prompt_ids=policy.prompt_ids(t.prompt))
           for i, t in enumerate(tasks)]
    by_id = {e.id: t for e, t in zip(eps, tasks)}
    rec = Path(record_dir) if record_dir else None

    def sample(group: list[Episode], feedback: bool, budget: int):
        ctx = []
        for e in group:
            c = e.prompt_ids + e.completion_ids
            if feedback:
                c = c + policy.feedback_ids(e.feedback, cfg.max_feedback_tokens)
            ctx.append(c)
        return policy.generate(ctx, max_new_tokens=budget, temperature=cfg.temperature, top_p=cfg.top_p, greedy=greedy)

    def score(group, samples, turn, attempt):
        results = env.step_many_sync([by_id[e.id] for e in group], [s.text for s in samples])
        recs = []
        for e, s, r in zip(group, samples, results):
            tr = TurnRecord(turn=turn, attempt=attempt, text=s.text, code=extract_code(s.text), valid=r.valid,
                            error=r.error, score=r.score, reward=r.reward, feedback=r.feedback, admitted=False,
                            stopped=s.stopped, n_tokens=len(s.ids))
            if rec is not None and r.render is not None and r.render.screenshots:
                tr.shots = r.render.save(rec / "shots" / e.id, stem=f"t{turn}a{attempt}")
            e.turns.append(tr)
            recs.append(tr)
        return recs

    def admit(e: Episode, s, tr: TurnRecord, with_feedback: bool):
        if with_feedback:  # the feedback the revision read becomes part of the trajectory (environment tokens)
            fb = policy.feedback_ids(e.feedback, cfg.max_feedback_tokens)
            e.completion_ids += fb
            e.env_mask += [0] * len(fb)
            e.logprobs += [0.0] * len(fb)
        e.completion_ids += s.ids
        e.env_mask += [1] * len(s.ids)
        e.logprobs += s.logprobs
        e.turns[-1].admitted = True
        e.best, e.feedback = tr.reward, tr.feedback
        e._last_sample = s
        if s.stopped == "eos":
            e.done, e.stop_reason = True, "policy ended"
        elif tr.reward is not None and tr.reward >= 1.0:
            e.done, e.stop_reason = True, "perfect score"

    # first attempt: always admitted (it starts the trajectory)
    first_budget = max(1, min(cfg.max_new_tokens, cfg.max_completion_length - 1))
    samples = sample(eps, False, first_budget)
    for e, s, tr in zip(eps, samples, score(eps, samples, 0, 0)):
        admit(e, s, tr, with_feedback=False)
        if not revise_invalid_first and not e.done and not tr.valid:  # no code is an invalid render too
            e.done, e.stop_reason = True, "invalid first render"

    for turn in range(1, cfg.max_turns):
        live = [e for e in eps if not e.done]
        if not live:
            break
        budgets = {e.id: cfg.max_completion_length - len(e.completion_ids)
                   - len(policy.feedback_ids(e.feedback, cfg.max_feedback_tokens)) - 1 for e in live}
        for e in live:
            if budgets[e.id] < 32:
                e.done, e.stop_reason = True, "completion budget"
        pending = [e for e in live if not e.done]
        tries = 1 + (cfg.max_resamples if cfg.forced_optimization else 0)
        for attempt in range(tries):
            if not pending:
                break
            budget = max(1, min(cfg.max_new_tokens, min(budgets[e.id] for e in pending)))
            samples = sample(pending, True, budget)
            still = []
            for e, s, tr in zip(pending, samples, score(pending, samples, turn, attempt)):
                ok = accept(e.best, tr.reward) if cfg.forced_optimization else tr.reward is not None
                if ok:
                    admit(e, s, tr, with_feedback=True)
                else:
                    still.append(e)
            pending = still
        for e in pending:  # nothing admitted within the resample budget: the reflection stops
            e.done, e.stop_reason = True, "no improvement" if cfg.forced_optimization else "critic failed"
    for e in eps:
        if not e.done:
            e.done, e.stop_reason = True, "max turns"
        _close(e, policy)
    if rec is not None:
        rec.mkdir(parents=True, exist_ok=True)
        with open(rec / "chains.jsonl", "a") as f:
            for e in eps:
                f.write(json.dumps({**e.to_record(), "time": time.time()}) + "\n")
    return eps


def _close(e: Episode, policy):
    """End the trajectory on the last admitted policy turn with EOS."""
    s = getattr(e, "_last_sample", None)
    if s is None or not e.completion_ids:
        return
    last = e.completion_ids[-1]
    if last == policy.eos_id:
        return
    if last == policy.get_feedback_id:  # the env stops here: that request for feedback becomes the end
        e.completion_ids[-1] = policy.eos_id
        e.logprobs[-1] = s.eos_logprob
    else:  # cut by the length limit: close it as the environment (no gradient on a token it never sampled)
        e.completion_ids.append(policy.eos_id)
        e.env_mask.append(0)
        e.logprobs.append(0.0)
    del e._last_sample
