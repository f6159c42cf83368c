"""A render's time budget in CPU seconds, not wall seconds.

The zero rule is for pages that are broken, not for machines that are busy. Under training concurrency (four
renders on two cores, a policy generating beside them) a page that needs 4 s alone takes 10 s of wall time, and a
wall-clock budget would score it 0. So a render is charged its share of the CPU time the browser actually gets:
every tick, the CPU the browser's processes used (Chromium reports it per process over CDP) is split evenly among
the renders in flight, at most one CPU-second per wall-second each. Alone, a page is charged its wall time; under
contention it is charged what it got. A render that reaches its budget is a `timeout` (the page's fault); one
that reaches the hard wall cap first was starved (`infra`: not the page's fault).
"""
from __future__ import annotations

import asyncio
import os
import time

TICK_S = 0.1


class Budget:
    """What one render has been charged so far."""

    def __init__(self, cpu_s: float, wall_s: float):
        self.cpu_s, self.wall_s = float(cpu_s), float(wall_s)
        self.t0 = time.perf_counter()
        self.spent = 0.0

    @property
    def wall(self) -> float:
        return time.perf_counter() - self.t0

    def over(self) -> str | None:
        """'cpu' when the page used its budget, 'wall' when the hard cap came first, else None."""
        if self.spent >= self.cpu_s:
            return "cpu"
        if self.wall >= self.wall_s:
            return "wall"
        return None


class CpuMeter:
    """Charges the renders in flight for the browser's CPU time. `cpu_times` is an async callable returning
    {process id: CPU seconds} for the browser's processes, or None when it cannot tell (then the cores are assumed
    to be shared fairly among the renders)."""

    def __init__(self, cpu_times, cores: int | None = None):
        self.cpu_times = cpu_times
        self.cores = cores or os.cpu_count() or 1
        self.active: set[Budget] = set()
        self._task: asyncio.Task | None = None

    def add(self, budget: Budget) -> None:
        self.active.add(budget)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    def remove(self, budget: Budget) -> None:
        self.active.discard(budget)

    async def _sample(self) -> dict | None:
        try:
            return await asyncio.wait_for(self.cpu_times(), 1.0)
        except Exception:  # the browser is busy restarting, or wedged: charge the fair share instead
            return None

    async def _run(self):
        last_t, last = time.perf_counter(), await self._sample()
        while self.active:
            await asyncio.sleep(TICK_S)
            now_t, now = time.perf_counter(), await self._sample()
            dt, n = now_t - last_t, len(self.active)
            if now is not None and last is not None:   # a process born in this tick counts whole
                used = sum(max(0.0, c - last.get(pid, 0.0)) for pid, c in now.items())
            else:
                used = dt * min(self.cores, n)
            share = min(dt, used / max(1, n))
            for b in list(self.active):
                b.spent += share
            last_t, last = now_t, now
