"""The protocol every critic shares: a Critique (score 0-100 or None, feedback, per-item results) and the Critic
base class with its async, batched and blocking entry points."""
from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from typing import Sequence

from relook.render import RenderResult, run_sync


@dataclass
class ItemResult:
    id: str
    passed: bool
    reason: str = ""          # why it failed (empty when passed), phrased as feedback
    description: str = ""
    weight: float = 1.0


@dataclass
class Critique:
    score: float | None                  # 0..100, None = critic failure
    feedback: str
    items: list[ItemResult] = field(default_factory=list)
    critic: str = ""
    error: str | None = None             # why the critic failed, when score is None
    raw: str | None = None               # the judge's raw reply (MLLM)
    elapsed_ms: float = 0.0

    @property
    def failed(self) -> bool:
        return self.score is None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["items"] = [{"id": it.id, "passed": it.passed, "reason": it.reason} for it in self.items]
        return d


class Critic:
    name = "critic"
    reads_dom = True   # False: the critic never reads RenderResult.dom, so its renders skip DOM snapshots

    async def critique(self, task, render: RenderResult) -> Critique:
        raise NotImplementedError

    async def critique_many(self, tasks: Sequence, renders: Sequence[RenderResult]) -> list[Critique]:
        return list(await asyncio.gather(*(self.critique(t, r) for t, r in zip(tasks, renders))))

    def critique_sync(self, task, render: RenderResult) -> Critique:
        """Blocking helper for scripts and notebooks (runs on relook's background loop)."""
        return run_sync(self.critique(task, render))

    def critique_many_sync(self, tasks, renders) -> list[Critique]:
        return run_sync(self.critique_many(tasks, renders))


def not_rendered(render: RenderResult, critic: str) -> Critique:
    """What any critic says about a page that produced nothing to look at."""
    reasons = {"no_code": "No HTML code was found in the answer; put the page in a ```html block.",
               "timeout": "The page never finished loading (an infinite loop or far too much work at load).",
               "crash": "The page crashed the browser (runaway memory or recursion).",
               "load_failed": "The page failed to load."}
    msg = reasons.get(render.error or "", f"The page did not render ({render.error}).")
    if render.detail and render.error not in ("no_code",):
        msg += f" Detail: {render.detail[:160]}"
    return Critique(score=0.0, feedback=msg, critic=critic)
