"""Sandboxed temporal renderer: model output text -> three screenshots over time, plus what a critic needs.

The paper renders each candidate page and shows the critic screenshots at load, +1 s and +2 s. We do the same
in headless Chromium (Playwright), with changes that matter for RL throughput, safety and fairness:

* page time is virtual (Playwright's clock, plus seeking CSS/Web animations), so the +1 s / +2 s shots cost
  no wall-clock seconds and are deterministic (relook.timeline);
* the page is hostile: every request is refused or served from the offline CDN mirror, dialogs are dismissed,
  popups closed, navigation away answered with 204 (relook.sandbox);
* each render has a budget in CPU seconds, so a busy machine does not turn a working page into a timeout
  (relook.budget), and a hard wall cap; a crashed or wedged browser is replaced.

Async core (`Renderer`) + sync helpers (`render`, `render_many`, `run_sync`) that run on a private event loop
in a worker thread, so they also work inside Jupyter, where Playwright's sync API refuses to run.
"""
from __future__ import annotations

import asyncio
import atexit
import dataclasses
import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from typing import Any, Sequence

from relook.budget import Budget, CpuMeter
from relook.page import (ERROR_KINDS, RenderConfig, RenderResult, code_hash, extract_code, invalid,  # noqa: F401
                         is_blank)
from relook.sandbox import (EPOCH_MS, LAUNCH_ARGS, PAGE_URL, BrowserMissing, PageState, Slot,  # noqa: F401
                            cdn_mirror, close_quietly, find_chromium, new_slot)
from relook.timeline import (SHOT_JS, STYLE_PROPS, Shooter, advance, do_action, expand_styles,  # noqa: F401
                             sandbox_script)


REUSE_LIMIT = 50   # pages per reused context: its init scripts grow with every clock step (Playwright's clock log)

# `load` of the current document (sandbox.js sets __relookLoaded before any page script runs)
LOADED_JS = """() => window.__relookLoaded || (document.readyState === 'complete' ? true :
  new Promise(r => addEventListener('load', () => r(true), {once: true})))"""


class _OverBudget(Exception):
    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


class Renderer:
    """Async renderer: one persistent browser, a fresh isolated context per page, a bounded pool of
    concurrent renders and a content-hash cache (identical code + settings + actions render once)."""

    def __init__(self, config: RenderConfig | None = None, concurrency: int | None = None,
                 chromium: str | None = None, cache_size: int = 512, reuse: bool = False):
        self.config = config or RenderConfig()
        # Renders wait on IPC much of the time, so two per core keep the CPU busy; many more than that buys no
        # throughput and lets contention eat each page's time budget.
        self.concurrency = max(1, int(concurrency or 2 * (os.cpu_count() or 1)))
        self.chromium = chromium
        self.cache_size = cache_size
        self._cache: OrderedDict[str, RenderResult] = OrderedDict()
        self._inflight: dict[str, asyncio.Future] = {}
        self._pw = None
        self._browser = None
        self._sem: asyncio.Semaphore | None = None
        self._lock: asyncio.Lock | None = None
        self._loop = None
        self._cdp = None
        self._meter = CpuMeter(self._cpu_times)
        # reuse=True (opt-in, for training throughput): a context and its page serve one page after another, reset
        # in between (Slot.reset). Cheaper than a fresh context per page; weaker isolation: the renderer process,
        # its caches and its memory outlive a page (a slot is retired after REUSE_LIMIT pages or any failure).
        self.reuse = reuse
        self._idle: list[Slot] = []
        self.stats = {"renders": 0, "cache_hits": 0, "browser_restarts": 0, "timeouts": 0, "starved": 0,
                      "crashes": 0}

    # -- lifecycle
    async def start(self) -> "Renderer":
        if self._browser is not None and self._browser.is_connected():
            return self
        self._loop = asyncio.get_running_loop()
        self._sem = self._sem or asyncio.Semaphore(self.concurrency)
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self._browser is None or not self._browser.is_connected():
                if self._browser is not None:  # it died under us (killed, crashed): replace it
                    self.stats["browser_restarts"] += 1
                await self._launch()
        return self

    async def _launch(self):
        from playwright.async_api import async_playwright
        exe = self.chromium or find_chromium()
        if not exe:
            raise BrowserMissing("no Chromium found: run `make setup` (installs Debian's chromium-headless-shell), "
                                 "or set RELOOK_CHROMIUM=/path/to/chrome")
        if self._pw is None:
            self._pw = await async_playwright().start()
        self._browser = await self._pw.chromium.launch(executable_path=exe, args=LAUNCH_ARGS, headless=True,
                                                       timeout=30000)
        try:
            self._cdp = await self._browser.new_browser_cdp_session()
        except Exception:  # no browser-level CDP: budgets fall back to a fair share of the cores
            self._cdp = None

    async def _cpu_times(self) -> dict | None:
        """{process id: CPU seconds} for every process of the browser (browser, GPU, renderers, network)."""
        if self._cdp is None:
            return None
        r = await self._cdp.send("SystemInfo.getProcessInfo")
        return {p["id"]: float(p["cpuTime"]) for p in r["processInfo"]}

    async def _restart(self, old):
        async with self._lock:
            if self._browser is not old:  # someone else already replaced it
                return
            self.stats["browser_restarts"] += 1
            try:
                await asyncio.wait_for(old.close(), 5)
            except BaseException:
                try:  # a wedged browser: kill its process
                    proc = getattr(getattr(old, "_impl_obj", None), "_browser_process", None)
                    if proc:
                        proc.kill()
                except Exception:
                    pass
            self._browser = None
            await self._launch()

    async def close(self):
        try:
            if self._browser is not None:
                await asyncio.wait_for(self._browser.close(), 10)
        except BaseException:
            pass
        try:
            if self._pw is not None:
                await self._pw.stop()
        except BaseException:
            pass
        self._browser = self._pw = None

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.close()

    # -- public API
    def clear_cache(self):
        """Forget finished renders (timing runs that must not reuse an earlier run's pages)."""
        self._cache.clear()

    async def render(self, text: str | None, *, extract: bool = True, actions: Sequence[dict] | None = None,
                     config: RenderConfig | None = None, use_cache: bool = True) -> RenderResult:
        """Render model output `text` (or raw HTML with extract=False). `actions` (click/type/press/hover/wait
        dicts) run after load; the temporal shots are then taken relative to the last action."""
        cfg = config or self.config
        code = extract_code(text) if extract else (text or "")
        if code is None:
            return invalid("no_code", "no ```html block, <html> document or <svg> found in the output")
        actions = [dict(a) for a in (actions or [])]
        key = hashlib.sha256(json.dumps([code, cfg.key(), actions], sort_keys=True).encode("utf-8", "surrogatepass")
                             ).hexdigest()
        if use_cache:
            if key in self._cache:
                self._cache.move_to_end(key)
                self.stats["cache_hits"] += 1
                return dataclasses.replace(self._cache[key], cached=True)
            if key in self._inflight:  # the same page is being rendered right now: wait for it
                self.stats["cache_hits"] += 1
                res = await asyncio.shield(self._inflight[key])
                return dataclasses.replace(res, cached=True)
        await self.start()
        fut = asyncio.get_running_loop().create_future()
        if use_cache:
            self._inflight[key] = fut
        try:
            async with self._sem:
                res = await self._render_guarded(code, cfg, actions)
            fut.set_result(res)
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # mark retrieved
            raise
        finally:
            self._inflight.pop(key, None)
        if use_cache and res.error != "render_error":
            self._cache[key] = res
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return res

    async def render_many(self, texts: Sequence[str | None], **kw) -> list[RenderResult]:
        return list(await asyncio.gather(*(self.render(t, **kw) for t in texts)))

    # -- one render, with its time budget and recovery
    async def _slot(self, browser, cfg: RenderConfig) -> Slot:
        """A context for the next page: with reuse, an idle one of this browser, reset; else a fresh one."""
        while self._idle:
            slot = self._idle.pop()
            if slot.ctx.browser is browser:
                try:
                    await asyncio.wait_for(slot.reset(cfg.viewport), 5)
                    return slot
                except Exception:
                    pass
            await close_quietly(slot.ctx, 3.0)
        return await asyncio.wait_for(new_slot(browser, cfg), 10)

    async def _render_guarded(self, code: str, cfg: RenderConfig, actions: list[dict]) -> RenderResult:
        self.stats["renders"] += 1
        t0 = time.perf_counter()
        browser = self._browser
        state = PageState()
        try:
            slot = await self._slot(browser, cfg)
        except BaseException as e:
            if isinstance(e, asyncio.CancelledError) and not _timed_out(e):
                raise
            await self._restart(browser)
            browser = self._browser
            try:
                slot = await self._slot(browser, cfg)
            except BaseException as e2:
                return invalid("render_error", f"browser unavailable: {e2!r}"[:300], code, infra=True)
        slot.load(code, state, cdn_mirror() if cfg.cdn_mirror else None)
        res = None
        budget = Budget(cfg.timeout_s, cfg.wall_cap_s)
        try:
            res = await self._within(budget, self._render_in(slot, code, cfg, actions, state, t0))
        except _OverBudget as e:
            if state.crashed:
                res = invalid("crash", "the page crashed", code)
            elif e.kind == "cpu":
                self.stats["timeouts"] += 1
                res = invalid("timeout", f"the page used its {cfg.timeout_s:g} s CPU budget without finishing "
                                         f"(infinite loop, huge DOM, ...)", code)
            else:
                self.stats["starved"] += 1
                res = invalid("timeout", f"the machine was too busy: after {budget.wall:.1f} s the page had had "
                                         f"{budget.spent:.1f} s of CPU (budget {cfg.timeout_s:g} s)", code, infra=True)
        except Exception as e:  # Playwright errors: crash, closed target, ...
            msg = str(e).splitlines()[0][:300] if str(e) else repr(e)
            if state.crashed or "crash" in msg.lower() or "Target closed" in msg or "has been closed" in msg:
                self.stats["crashes"] += 1
                res = invalid("crash", f"the page crashed: {msg}", code)
            else:  # we serve the page ourselves: a load that fails is ours to fix, not the page's
                res = invalid("load_failed", msg, code, infra=True)
        finally:
            healthy = res is not None and res.error not in ("timeout", "crash", "load_failed") and not state.crashed
            if self.reuse and healthy and slot.renders < REUSE_LIMIT and self._browser is browser:
                self._idle.append(slot)
            elif not await close_quietly(slot.ctx, 3.0):  # the context would not die: the browser is wedged
                await self._restart(browser)
        state.fill(res)
        res.config = cfg
        res.timings["total_ms"] = (time.perf_counter() - t0) * 1e3
        res.timings["cpu_s"] = round(budget.spent, 3)
        return res

    async def _within(self, budget: Budget, coro):
        """Run `coro` until it finishes or its budget runs out (raises _OverBudget)."""
        task = asyncio.ensure_future(coro)
        self._meter.add(budget)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=0.05)
                if done:
                    return task.result()
                kind = budget.over()
                if kind:
                    raise _OverBudget(kind)
        finally:
            self._meter.remove(budget)
            if not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=2.0)

    async def _render_in(self, slot: Slot, code, cfg: RenderConfig, actions, state, t0) -> RenderResult:
        page = await slot.new_page()
        # Wait for `load` ourselves: Playwright's own wait follows a navigation the page starts during load,
        # which we answer with 204 and so never completes.
        await page.goto(PAGE_URL, wait_until="commit", timeout=cfg.wall_cap_s * 1000)
        await page.evaluate(LOADED_JS)
        if state.mirrored:  # web fonts load after `load`: wait for them so the first shot has the page's fonts
            await page.evaluate("document.fonts.ready.then(() => true)")
        t_load = time.perf_counter()
        await advance(page, cfg.settle_ms, state)

        res = RenderResult(valid=True, code=code, timepoints=list(cfg.timepoints), actions=actions, config=cfg)
        for a in actions:
            err = await do_action(page, a, state, wait_ms=cfg.timepoints[-1])
            if err:
                res.action_errors.append(err)
            await advance(page, cfg.settle_ms, state)

        props = list(dict.fromkeys(STYLE_PROPS + list(cfg.extra_styles)))
        shooter = Shooter(page, cfg, slot)
        now, sig = 0, None
        for tp in cfg.timepoints:
            if tp > now:
                await advance(page, tp - now, state)
                now = tp
            # The clock is paused, so the DOM read before the shot is the DOM the shot shows. A page whose DOM did
            # not change and where nothing moves (no animations, canvas, video, SMIL) looks the same: reuse both.
            snap = json.loads(await page.evaluate(SHOT_JS, [tp, props, cfg.max_elements, len(STYLE_PROPS), sig,
                                                            cfg.dom]))
            if snap.get("same"):
                res.screenshots.append(res.screenshots[-1])
            else:
                res.screenshots.append(await shooter.shot())
            if cfg.dom:
                res.dom.append(res.dom[-1] if snap.get("same") else expand_styles(snap))
            sig = snap["sig"]
        t_end = time.perf_counter()
        res.timings.update(load_ms=(t_load - t0) * 1e3, shots_ms=(t_end - t_load) * 1e3)

        if all(is_blank(png) for png in res.screenshots):  # stops at the first shot with something on it
            res.valid = False
            if state.page_errors:
                res.error, res.detail = "js_error", "nothing visible; the script threw: " + state.page_errors[0][:200]
            else:
                res.error, res.detail = "blank", "the page renders nothing visible"
        return res


def _timed_out(e: BaseException) -> bool:
    return isinstance(e, asyncio.TimeoutError)



# --------------------------------------------------------------------------------------------- sync helpers
class _Background:
    """A private event loop in a daemon thread. Sync helpers submit coroutines to it, so they work from plain
    scripts and from inside Jupyter's running loop alike; the default renderer lives on this loop."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="relook-render", daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float | None = None):
        if threading.current_thread() is self.thread:
            raise RuntimeError("run_sync() called from the renderer's own loop; await the coroutine instead")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


_BG: _Background | None = None
_DEFAULT: Renderer | None = None
_BG_LOCK = threading.Lock()


def run_sync(coro, timeout: float | None = None):
    """Run a coroutine on relook's background loop and return its result (blocking)."""
    global _BG
    with _BG_LOCK:
        if _BG is None:
            _BG = _Background()
            atexit.register(shutdown)
    return _BG.run(coro, timeout)


def default_renderer() -> Renderer:
    """The shared renderer used by the sync helpers (and by critics and rollouts unless given another)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Renderer(concurrency=int(os.environ.get("RELOOK_RENDER_CONCURRENCY", "0")) or None)
    return _DEFAULT


_PER_LOOP = None  # weakref.WeakKeyDictionary: caller loop -> its Renderer


def get_renderer() -> Renderer:
    """The renderer for the running event loop: the shared default one on relook's background loop, else one
    per caller loop (Playwright objects and asyncio primitives cannot cross loops)."""
    global _PER_LOOP
    loop = asyncio.get_running_loop()
    if _BG is not None and loop is _BG.loop:
        return default_renderer()
    if _PER_LOOP is None:
        import weakref
        _PER_LOOP = weakref.WeakKeyDictionary()
    if loop not in _PER_LOOP:
        _PER_LOOP[loop] = Renderer()
    return _PER_LOOP[loop]


def render(text: str | None, **kw: Any) -> RenderResult:
    """Sync: render model output with the default renderer. Works in scripts and in notebooks."""
    return run_sync(default_renderer().render(text, **kw))


def render_many(texts: Sequence[str | None], **kw: Any) -> list[RenderResult]:
    return run_sync(default_renderer().render_many(texts, **kw))


def shutdown():
    global _DEFAULT, _BG
    if _BG is not None and _DEFAULT is not None:
        try:
            _BG.run(_DEFAULT.close(), timeout=15)
        except Exception:
            pass
    _DEFAULT = None
