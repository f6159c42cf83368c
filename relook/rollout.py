"""ReLook episodes: generate -> render -> critique -> reward, then revision rounds under Forced Optimization.

For a batch of tasks, every round samples one turn per live episode (batched generation), renders and
critiques all of them concurrently, and admits a revision only if it beats the episode's best score so far;
a rejected revision is resampled up to K times, after which the episode stops reflecting. Only admitted turns
enter the trajectory (relook.protocol builds the ids):

    completion = turn_1 <get_feedback> [feedback block] turn_2 <get_feedback> ... turn_k <end of turn>
    env_mask   = 1 .................1   0 .......... 0  1 .................1     1 ......1   1

Feedback blocks come from the environment: env_mask 0, so they never receive gradient. The trajectory ends with
what the policy sampled last: its end-of-turn token, or the <get_feedback> of a last admitted turn whose
revisions were all rejected (nothing is substituted: every token the loss sees was sampled by the policy).

The zero rule also ends an episode whose first render is invalid, with reward 0. Otherwise, since a trajectory's
reward is its final admitted turn, a policy learns to throw its first turn away (junk, then ask the critic) and
let a revision collect the reward — the reward hacking the rule exists to stop (tiny GRPO runs without it drove
first-attempt validity to zero within a few steps). With `zero_invalid` off (the ablation) revisions go on.

Several processes: how many rounds and resamples an episode takes depends on its pages, but a generation
backend may be collective (HF generate under ZeRO-3, vLLM server mode, tensor parallelism). With `sync` (an
any-rank all-reduce), every loop decision is taken jointly and a rank with nothing to sample generates one
dummy token, so every rank makes the same number of generate calls.
"""
from __future__ import annotations

import asyncio
import copy
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

from relook.critic import Critic, Critique, make_critic
from relook.render import RenderConfig, Renderer, RenderResult, extract_code, get_renderer, run_sync
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
    infra: bool = False          # the render failed through no fault of the page (reward None)
    render_s: float = 0.0        # this page's render / critique time (pages of a batch overlap)
    critique_s: float = 0.0


class Environment:
    """The environment side of a turn: render the page, ask the critic, apply the zero rule.
    `extract(text) -> page | None` replaces relook.render's extract_code (a benchmark's own rules: see
    relook.artifactsbench); None from it is an invalid render (`no_code`). `items` is the part of each task's
    checklist the critic sees (Task.view): "loop" for rewards, feedback and critic-in-loop selection, "judge"
    for evaluation (`judge()`), so an answer is never scored on the items that selected it."""

    def __init__(self, critic: Critic | str = "checklist", zero_invalid: bool = True,
                 render_config: RenderConfig | None = None, renderer=None,
                 extract: Callable[[str], str | None] | None = None, items: str = "loop", **critic_kw):
        self.critic = make_critic(critic, **critic_kw) if isinstance(critic, str) else critic
        self.zero_invalid = zero_invalid
        self.render_config = render_config
        self.renderer = renderer
        self.extract = extract
        self.items = items

    def judge(self, items: str = "judge") -> "Environment":
        """The same environment judging another part of the checklist (default: the held-out items)."""
        j = copy.copy(self)
        j.items = items
        return j

    async def _render(self, renderer, text: str) -> RenderResult:
        cfg = self.render_config or renderer.config
        if not getattr(self.critic, "reads_dom", True) and cfg.dom:
            cfg = replace(cfg, dom=False)  # a pixels-only critic: no DOM snapshot to pay for
        if self.extract is None:
            return await renderer.render(text, config=cfg)
        code = self.extract(text)
        if code is None:
            return RenderResult(valid=False, error="no_code", detail="no page found in the answer")
        return await renderer.render(code, extract=False, config=cfg)

    async def step(self, task, text: str) -> EnvResult:
        ok, why = check_format(text)
        renderer = self.renderer or get_renderer()
        t0 = time.perf_counter()
        res = await self._render(renderer, text)
        t1 = time.perf_counter()
        crit = await self.critic.critique(task.view(self.items) if hasattr(task, "view") else task, res)
        t2 = time.perf_counter()
        rew = reward(res, crit, zero_invalid=self.zero_invalid, format_ok=ok)
        feedback = crit.feedback if crit.score is not None else "The critic could not judge this page."
        if not ok and res.valid:
            feedback = f"Format problem: {why}.\n{feedback}"
        if res.infra:
            feedback = "The page could not be rendered this time (the renderer's fault, not the page's)."
        return EnvResult(text=text, valid=res.valid, error=res.error, format_ok=ok, score=crit.score, reward=rew,
                         feedback=feedback, infra=res.infra, render=res, critique=crit, render_s=t1 - t0, critique_s=t2 - t1)

    async def step_many(self, tasks: Sequence, texts: Sequence[str]) -> list[EnvResult]:
        return list(await asyncio.gather(*(self.step(t, x) for t, x in zip(tasks, texts))))

    def step_many_sync(self, tasks, texts) -> list[EnvResult]:
        return run_sync(self.step_many(tasks, texts))


def make_environment(cfg, protocol: str = "relook") -> Environment:
    """The environment a config describes (critic kind, zero rule, render budget). `protocol="artifactsbench"`:
    that benchmark's extraction, render settings and MLLM judge (relook.artifactsbench), with the config's
    endpoint settings."""
    kw = {}
    if cfg.rollout.critic == "mllm":
        kw = {"base_url": cfg.critic.base_url or None, "model": cfg.critic.model or None,
              "timeout": cfg.critic.timeout, "max_retries": cfg.critic.max_retries,
              "concurrency": cfg.critic.concurrency}
    if protocol == "artifactsbench":
        if cfg.rollout.critic != "mllm":
            raise ValueError("the ArtifactsBench protocol judges with the MLLM critic (rollout.critic=mllm)")
        from relook.artifactsbench import environment
        return environment(zero_invalid=cfg.rollout.zero_invalid, **kw)
    if protocol != "relook":
        raise ValueError(f"unknown protocol {protocol!r} (expected relook or artifactsbench)")
    r = cfg.render
    renderer = Renderer(concurrency=r.concurrency or None, reuse=r.reuse) if r.reuse or r.concurrency else None
    return Environment(cfg.rollout.critic, zero_invalid=cfg.rollout.zero_invalid, renderer=renderer,
                       render_config=RenderConfig(timeout_s=r.timeout_s, max_wall_s=r.max_wall_s,
                                                  cdn_mirror=r.cdn_mirror), **kw)


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
    infra: bool = False          # render failed through our fault: reward None, not 0
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
                 ids: Sequence[str] | None = None, greedy: bool = False, revise_invalid_first: bool | None = None,
                 sync=None, timings: dict | None = None, write_chains: bool = True) -> list[Episode]:
    """Run one ReLook episode per task (repeat tasks for a GRPO group). `cfg` is the rollout section.
    With `record_dir`, every sampled turn's screenshots are saved under record_dir/shots/<episode id>/ and (with
    `write_chains`) the chains appended to chains.jsonl. `revise_invalid_first` (default: only when the zero rule
    is off) lets an invalid first attempt be revised: training must not (see above), but at test time the critic's
    "the page is blank" is worth acting on. `sync(flag) -> bool` is True when the flag is True on any rank (see
    above). `timings` accumulates generate_s (wall), render_s and critique_s (the environment's wall time split in
    proportion to the summed per-page render and critique times, which overlap) and generate_calls."""
    if revise_invalid_first is None:
        revise_invalid_first = not cfg.zero_invalid
    any_rank = sync or (lambda flag: flag)
    tm = timings if timings is not None else {}
    for k in ("generate_s", "render_s", "critique_s", "generate_calls"):
        tm.setdefault(k, 0)
    eps = [Episode(id=(ids[i] if ids else f"ep{i}"), task_id=t.id, prompt=t.prompt, prompt_ids=policy.prompt_ids(t.prompt))
           for i, t in enumerate(tasks)]
    by_id = {e.id: t for e, t in zip(eps, tasks)}
    rec = Path(record_dir) if record_dir else None

    def sample(group: list[Episode], feedback: bool, budget: int, n: int = 1):
        """One turn per episode of `group` (n i.i.d. draws each, episode-major, with n > 1)."""
        ctx = [e.prompt_ids + e.completion_ids + (policy.feedback_ids(e.feedback, cfg.max_feedback_tokens)
                                                  if feedback else []) for e in group for _ in range(n)]
        t0 = time.perf_counter()
        # a rank with nothing to sample still calls generate (one token) when others do: collective backends
        out = policy.generate(ctx or [eps[0].prompt_ids], max_new_tokens=budget if ctx else 1,
                              temperature=cfg.temperature, top_p=cfg.top_p, greedy=greedy,
                              # under ZeRO-3 every rank must make the same number of forward passes: one chunk
                              batch_size=max(1, len(ctx)) if getattr(policy, "synced_gpus", False)
                              else cfg.generate_batch_size)
        tm["generate_s"] += time.perf_counter() - t0
        tm["generate_calls"] += 1
        return out[:len(ctx)]

    def score(group, samples, turn, attempt):
        t0 = time.perf_counter()
        results = env.step_many_sync([by_id[e.id] for e in group], [s.text for s in samples]) if group else []
        wall = time.perf_counter() - t0
        r_sum, c_sum = sum(r.render_s for r in results), sum(r.critique_s for r in results)
        if r_sum + c_sum > 0:
            tm["render_s"] += wall * r_sum / (r_sum + c_sum)
            tm["critique_s"] += wall * c_sum / (r_sum + c_sum)
        recs = []
        for e, s, r in zip(group, samples, results):
            tr = TurnRecord(turn=turn, attempt=attempt, text=s.text, code=extract_code(s.text), valid=r.valid,
                            error=r.error, score=r.score, reward=r.reward, feedback=r.feedback, admitted=False,
                            stopped=s.stopped, n_tokens=len(s.ids), infra=r.infra)
            if rec is not None and r.render is not None and r.render.screenshots:
                tr.shots = [str(Path(p).absolute())  # in memory: still valid after a chdir
                            for p in r.render.save(rec / "shots" / e.id, stem=f"t{turn}a{attempt}")]
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
        if s.stopped == "eos":
            e.done, e.stop_reason = True, "policy ended"
        elif tr.reward is not None and tr.reward >= 1.0:
            e.done, e.stop_reason = True, "perfect score"

    # first attempt: always admitted (it starts the trajectory)
    first_budget = max(1, min(cfg.max_new_tokens, cfg.max_completion_length))
    samples = sample(eps, False, first_budget)
    for e, s, tr in zip(eps, samples, score(eps, samples, 0, 0)):
        admit(e, s, tr, with_feedback=False)
        if tr.infra:  # nothing to judge and nothing to learn from: the trajectory is left out (reward None)
            e.done, e.stop_reason = True, "infra failure"
        elif not revise_invalid_first and not e.done and not tr.valid:  # no code is an invalid render too
            e.done, e.stop_reason = True, "invalid first render"

    tries = 1 + (cfg.max_resamples if cfg.forced_optimization else 0)
    for turn in range(1, cfg.max_turns):
        live = [e for e in eps if not e.done]
        budgets = {e.id: cfg.max_completion_length - len(e.completion_ids)
                   - len(policy.feedback_ids(e.feedback, cfg.max_feedback_tokens)) for e in live}
        for e in live:
            if budgets[e.id] < 32:
                e.done, e.stop_reason = True, "completion budget"
        pending = [e for e in live if not e.done]
        if not any_rank(bool(pending)):
            break  # no rank has a revision to sample: every episode is over
        # the round's token budget: the tightest of the episodes still in it
        budget_of = lambda eps_: max(1, min([cfg.max_new_tokens] + [budgets[e.id] for e in eps_]))  # noqa: E731
        drawn = {}  # batch_resamples: every try of the round, drawn up front (episode id -> samples)
        if cfg.batch_resamples:
            out = sample(pending, True, budget_of(pending), n=tries)
            drawn = {e.id: out[i * tries:(i + 1) * tries] for i, e in enumerate(pending)}
        for attempt in range(tries):
            if attempt and not any_rank(bool(pending)):
                break
            if cfg.batch_resamples:
                samples = [drawn[e.id][attempt] for e in pending]
            else:  # one by one: episodes that left the round no longer bound the budget
                samples = sample(pending, True, budget_of(pending))
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
    if rec is not None and write_chains:
        write_chain_records(rec, [e.to_record() for e in eps])
    return eps


def write_chain_records(record_dir: str | Path, records: Sequence[dict]) -> None:
    """Append episode records (Episode.to_record) to record_dir/chains.jsonl, the chain viewer's input. Screenshot
    paths under record_dir are stored relative to it (relook.viz.load_chains resolves them against the file's
    folder): the records stay readable from any working directory and after the run directory is moved."""
    rec = Path(record_dir)
    rec.mkdir(parents=True, exist_ok=True)
    base = rec.absolute()

    def stored(shot: str) -> str:
        p = Path(shot).absolute()
        return p.relative_to(base).as_posix() if p.is_relative_to(base) else str(p)

    with open(rec / "chains.jsonl", "a") as f:
        for r in records:
            turns = [{**t, "shots": [stored(s) for s in t.get("shots") or []]} for t in r.get("turns", [])]
            f.write(json.dumps({**r, "turns": turns, "time": time.time()}) + "\n")
