"""Reward and Forced Optimization — pure functions.

* reward(render, critique): exactly 0 for an invalid render or a format violation (the paper's zero rule, which
  anchors renderability and stops reward hacking), else critic score / 100. None when the critic failed or the
  render failed through our fault (render.infra): a failure is not a zero, it is excluded upstream (NaN in GRPO).
* accept(best_so_far, candidate): Forced Optimization admits a revision only if it strictly beats the best
  score so far; `forced_optimization` replays the resample-up-to-K rule on a hand-made sequence.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from relook.protocol import FEEDBACK_CLOSE, FEEDBACK_OPEN, GET_FEEDBACK, TURN_TAGS  # noqa: F401 (re-exported)
from relook.render import extract_code

MAX_RESAMPLES = 10  # paper: resample a non-improving revision up to 10 times, then stop reflecting


def check_format(turn_text: str | None) -> tuple[bool, str]:
    """One policy turn: it must hold a code block, must not forge environment feedback, and may ask for feedback
    once, at the end. Returns (ok, reason)."""
    if not turn_text or extract_code(turn_text) is None:
        return False, "no code block"
    if FEEDBACK_OPEN in turn_text or FEEDBACK_CLOSE in turn_text:
        return False, "the turn writes feedback tags itself"
    n = turn_text.count(GET_FEEDBACK)
    if n > 1:
        return False, f"{GET_FEEDBACK} appears {n} times"
    if n == 1 and turn_text.rstrip().endswith(GET_FEEDBACK) is False:
        return False, f"{GET_FEEDBACK} must end the turn"
    return True, ""


def reward(render, critique, *, zero_invalid: bool = True, format_ok: bool = True) -> float | None:
    """0.0 for an invalid render or a format violation (unless `zero_invalid` is off, the ablation), None when
    the critic failed or the render failed through no fault of the page (`render.infra`: the browser was down, the
    machine too busy), else score/100."""
    if getattr(render, "infra", False):
        return None
    if zero_invalid and (not render.valid or not format_ok):
        return 0.0
    if critique is None or critique.score is None:
        return None
    return max(0.0, min(1.0, float(critique.score) / 100.0))


def accept(best_so_far: float | None, candidate: float | None) -> bool:
    """Forced Optimization: admit a revision only if its score is strictly greater than the best so far.
    A failed critique (None) is never admitted; anything beats no score at all."""
    if candidate is None:
        return False
    return best_so_far is None or candidate > best_so_far


@dataclass
class FOStep:
    turn: int                      # revision round (0 = the first attempt)
    attempt: int                   # which sample within the round (0 = first, then resamples)
    score: float | None
    admitted: bool
    best_so_far: float | None      # after this step (with FO off: the last admitted score)


@dataclass
class FOTrace:
    steps: list[FOStep] = field(default_factory=list)
    stopped_early: bool = False    # a round ran out of resamples without improving
    best: float | None = None

    @property
    def admitted(self) -> list[FOStep]:
        return [s for s in self.steps if s.admitted]

    @property
    def resamples(self) -> int:
        return sum(1 for s in self.steps if s.attempt > 0)

    def best_curve(self) -> list[float | None]:
        """Best-so-far after each step: monotone non-decreasing by construction."""
        return [s.best_so_far for s in self.steps]


def forced_optimization(rounds: Sequence[Sequence[float | None]], max_resamples: int = MAX_RESAMPLES,
                        enabled: bool = True) -> FOTrace:
    """Replay Forced Optimization on candidate scores. `rounds[0]` is the first attempt ([score]); each later
    round lists the scores its samples would get, in order. Per round, samples are tried until one is admitted
    (at most 1 + max_resamples of them); a round with no admitted sample ends the reflection.
    With `enabled=False` (the ablation) every first sample of a round is admitted."""
    trace = FOTrace()
    current: float | None = None   # score of the last admitted turn: the best so far when FO is on
    for turn, cands in enumerate(rounds):
        free = turn == 0 or not enabled  # the first attempt, and every revision without FO, is simply taken
        admitted_here = False
        for attempt, score in enumerate(cands[: 1 if free else 1 + max_resamples]):
            ok = score is not None if free else accept(current, score)
            if ok:
                current = score
            trace.steps.append(FOStep(turn, attempt, score, ok, current))
            if ok:
                admitted_here = True
                break
        if not admitted_here:
            trace.stopped_early = turn > 0
            break
    trace.best = current
    return trace
