"""Inference modes. The paper drops the critic at test time: the policy self-edits.

* base       — one pass: the first attempt is the answer.
* self-edit  — critic-free: after each attempt the environment only says "no critic is available, check your
               page against the task"; the policy revises its own code for N rounds (default 3). Nothing is
               rendered or judged in the loop, so it costs only generation.
* critic     — the training-time loop at test time: render, critique, revise under Forced Optimization; the
               answer is the best admitted turn. Highest quality, highest cost.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

from relook.protocol import SELF_EDIT_FEEDBACK
from relook.render import extract_code

MODES = ("base", "self-edit", "critic")


@dataclass
class Answer:
    task_id: str
    text: str                    # the final turn's text (what gets rendered and judged)
    turns: list[str] = field(default_factory=list)
    seconds: float = 0.0         # wall time spent on this task (batch time / batch size)
    n_tokens: int = 0
    judged: object = None        # critic-in-loop: the final turn's TurnRecord (already rendered and judged)
    first_seconds: float = 0.0   # self-edit: the first round's share of `seconds`
    first_tokens: int = 0        # self-edit: the first turn's tokens


def _seed(seed):
    if seed is not None:
        import torch
        torch.manual_seed(seed)


def base(policy, tasks: Sequence, max_new_tokens: int = 400, temperature: float = 1.0, greedy: bool = False,
         seed: int | None = 0) -> list[Answer]:
    _seed(seed)
    t0 = time.perf_counter()
    samples = policy.generate([policy.prompt_ids(t.prompt) for t in tasks], max_new_tokens=max_new_tokens,
                              temperature=temperature, greedy=greedy)
    dt = (time.perf_counter() - t0) / max(1, len(tasks))
    return [Answer(t.id, s.text, [s.text], dt, len(s.ids)) for t, s in zip(tasks, samples)]


def self_edit(policy, tasks: Sequence, rounds: int = 3, max_new_tokens: int = 400, temperature: float = 1.0,
              greedy: bool = False, seed: int | None = 0, max_feedback_tokens: int = 96) -> list[Answer]:
    """First attempt, then `rounds` critic-free revisions. The answer is the last turn that contains code
    (a syntactic look at the text, not a judgement of the page)."""
    _seed(seed)
    t0 = time.perf_counter()
    ctx = [policy.prompt_ids(t.prompt) for t in tasks]
    turns = [[] for _ in tasks]
    n_tok = [0] * len(tasks)
    first_tok = [0] * len(tasks)
    live = list(range(len(tasks)))
    fb = policy.feedback_ids(SELF_EDIT_FEEDBACK, max_feedback_tokens)
    first_dt = 0.0
    for r in range(rounds + 1):
        if not live:
            break
        samples = policy.generate([ctx[i] for i in live], max_new_tokens=max_new_tokens, temperature=temperature,
                                  greedy=greedy)
        if r == 0:
            first_dt = (time.perf_counter() - t0) / max(1, len(tasks))
        nxt = []
        for i, s in zip(live, samples):
            turns[i].append(s.text)
            n_tok[i] += len(s.ids)
            if r == 0:
                first_tok[i] = len(s.ids)
            ctx[i] = ctx[i] + s.ids + fb
            if s.stopped == "feedback":  # it asked for another look; EOS means it is done
                nxt.append(i)
        live = nxt
    dt = (time.perf_counter() - t0) / max(1, len(tasks))
    out = []
    for t, ts, n, n1 in zip(tasks, turns, n_tok, first_tok):
        final = next((x for x in reversed(ts) if extract_code(x) is not None), ts[-1])
        out.append(Answer(t.id, final, ts, dt, n, first_seconds=first_dt, first_tokens=n1))
    return out


def first_passes(self_edits: Sequence[Answer]) -> list[Answer]:
    """The base answers inside self-edit answers: its first round is the same draw (same seed, same contexts, same
    batches) as `base`, so an evaluation of both modes need not sample the first attempts twice."""
    return [Answer(a.task_id, a.turns[0], a.turns[:1], a.first_seconds, a.first_tokens) for a in self_edits]


def critic_loop(policy, tasks: Sequence, env, rollout_cfg, rounds: int = 3, seed: int | None = 0,
                greedy: bool = False) -> list[Answer]:
    """The ReLook loop with a critic at test time (Forced Optimization on): the best admitted turn. Unlike in
    training, an invalid first attempt is revised too: at test time only the answer counts."""
    import dataclasses

    from relook.rollout import run_episodes
    _seed(seed)
    # room for every round: a training budget (max_completion_length) would starve the later revisions
    need = (rounds + 1) * (rollout_cfg.max_new_tokens + rollout_cfg.max_feedback_tokens)
    cfg = dataclasses.replace(rollout_cfg, max_turns=rounds + 1,
                              max_completion_length=max(rollout_cfg.max_completion_length, need))
    t0 = time.perf_counter()
    eps = run_episodes(policy, tasks, env, cfg, greedy=greedy, revise_invalid_first=True)
    dt = (time.perf_counter() - t0) / max(1, len(tasks))
    out = []
    for t, e in zip(tasks, eps):
        final = e.final
        out.append(Answer(t.id, final.text if final else "", [x.text for x in e.turns], dt,
                          sum(x.n_tokens for x in e.turns), judged=final))
    return out


def answer(policy, tasks, mode: str = "base", rounds: int = 3, env=None, rollout_cfg=None, **kw) -> list[Answer]:
    if mode == "base":
        return base(policy, tasks, **kw)
    if mode == "self-edit":
        return self_edit(policy, tasks, rounds=rounds, **kw)
    if mode == "critic":
        if env is None or rollout_cfg is None:
            raise ValueError("critic mode needs an environment (critic) and a rollout config")
        kw = {k: v for k, v in kw.items() if k in ("seed", "greedy")}
        return critic_loop(policy, tasks, env, rollout_cfg, rounds=rounds, **kw)
    raise ValueError(f"unknown mode {mode!r} (expected one of {', '.join(MODES)})")
