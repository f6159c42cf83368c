"""Sandboxed temporal renderer: model output text -> three screenshots over time, plus what a critic needs.

The paper renders each candidate page and shows the critic screenshots at load, +1 s and +2 s. We do the same
in headless Chromium (Playwright), with two changes that matter for RL throughput and safety:

* page time is virtual (Playwright's clock, plus seeking CSS/Web animations), so the +1 s / +2 s shots cost
  no wall-clock seconds and are deterministic;
* the page is hostile: every request is refused (route interception, with a dead proxy behind it), dialogs are
  dismissed, popups closed, navigation away answered with 204 (which keeps the current document), and each
  render has a wall-time budget after which the page is killed and, if needed, the browser replaced.

Async core (`Renderer`) + sync helpers (`render`, `render_many`, `run_sync`) that run on a private event loop
in a worker thread, so they also work inside Jupyter, where Playwright's sync API refuses to run.
"""
from __future__ import annotations

import asyncio
import atexit
import base64
import dataclasses
import glob
import hashlib
import io
import json
import os
import re
import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

PAGE_URL = "https://page.relook.invalid/"  # .invalid never resolves; the document is served from route()
EPOCH_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z: Date.now() is fixed so renders are reproducible

LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--disable-default-apps", "--mute-audio",
    "--disable-extensions", "--dns-prefetch-disable", "--hide-scrollbars",
    # Defence in depth behind route(): anything that slips past interception goes to a dead proxy,
    # loopback included ("<-loopback>" removes Chromium's implicit localhost bypass).
    "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    # A memory bomb should crash its renderer quickly instead of eating the machine.
    "--js-flags=--max-old-space-size=512",
    "--force-color-profile=srgb",  # screenshot pixels are the CSS colors, on every machine
]

# Runs before any page script, in every frame.
SANDBOX_JS = r"""
(() => {
  let s = %(seed)d >>> 0;  // seeded Math.random: identical code renders identically
  Math.random = function () { s = (s + 0x6D2B79F5) >>> 0; let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
  // counts DOM mutations so the renderer can tell that nothing changed between two time points
  let muts = 0;
  Object.defineProperty(window, '__relookMutations', {get: () => muts});
  try { new MutationObserver(l => { muts += l.length; }).observe(document,
        {subtree: true, childList: true, attributes: true, characterData: true}); } catch (e) {}
  const noop = () => null;
  try { window.open = noop; window.print = noop; } catch (e) {}
  for (const k of ['RTCPeerConnection', 'webkitRTCPeerConnection', 'RTCDataChannel']) {
    try { delete window[k]; window[k] = undefined; } catch (e) {}
  }
})();
"""

# Seeks CSS/Web animations to the virtual time t: they are driven by the compositor, not by the fake clock.
SEEK_JS = r"""
(t) => {
  const seen = window.__relookAnims || (window.__relookAnims = new WeakMap());
  for (const a of document.getAnimations()) {
    if (!seen.has(a)) { seen.set(a, [t, a.currentTime || 0]); try { a.pause(); } catch (e) {} }
    const [t0, c0] = seen.get(a);
    try { a.currentTime = c0 + (t - t0); } catch (e) {}
  }
}
"""

# Computed styles kept for every visible element. Reading styles is most of a snapshot's cost on big pages, so
# the list is short; a critic that needs another property asks for it (RenderConfig.extra_styles).
STYLE_PROPS = [
    "color", "background-color", "background-image", "font-size", "font-weight", "font-style", "font-family",
    "text-align", "text-decoration-line", "display", "visibility", "opacity", "position", "border-radius",
    "width", "height",
]

# One pass over the DOM: visible elements with boxes, text and computed styles, and an indexed serialization
# (data-rk attributes on a clone, the live page is not touched) so critics can match CSS selectors offline.
SNAPSHOT_JS = r"""
([props, maxEls]) => {
  const SKIP = new Set(['SCRIPT','STYLE','HEAD','META','LINK','NOSCRIPT','TEMPLATE','TITLE','BASE']);
  const EMPTY = new Set(['SCRIPT','STYLE','NOSCRIPT','TEMPLATE']), empty = [];
  const ATTRS = ['href', 'src', 'type', 'placeholder', 'alt', 'aria-label', 'role', 'name'];
  const hiddenProps = ['display', 'visibility', 'opacity'].concat(props.slice(%(n_core)d));
  const de = document.documentElement, body = document.body;
  const sx = window.scrollX, sy = window.scrollY;
  const W = Math.max(de.scrollWidth, body ? body.scrollWidth : 0, window.innerWidth);
  const H = Math.max(de.scrollHeight, body ? body.scrollHeight : 0, window.innerHeight);
  // Most elements share a computed style: ship each distinct one once and index it (a big page's payload is
  // mostly styles, and crossing the driver costs more than building it).
  const styles = [], styleIx = new Map();
  const styleOf = (node, names) => {
    const cs = getComputedStyle(node), vals = names.map(p => cs.getPropertyValue(p)), k = vals.join('\u0001');
    let j = styleIx.get(k);
    if (j === undefined) {
      const st = {}; names.forEach((p, q) => { st[p] = vals[q]; });
      j = styles.length; styles.push(st); styleIx.set(k, j);
    }
    return j;
  };
  // whitespace collapsed, first `max` characters; a long text is cut before the regex runs over all of it
  const squash = (t, max) => (t.length > 20 * max ? t.slice(0, 20 * max) : t).replace(/\s+/g, ' ').trim().slice(0, max);
  const r2 = (x) => Math.round(x * 100) / 100;
  const els = [];
  const walk = document.createTreeWalker(de, NodeFilter.SHOW_ELEMENT);
  let n = 0, node = walk.currentNode;
  const clone = de.cloneNode(true);
  const cwalk = document.createTreeWalker(clone, NodeFilter.SHOW_ELEMENT);
  let cnode = cwalk.currentNode;
  while (node) {
    if (n < maxEls && !SKIP.has(node.tagName)) {
      const r = node.getBoundingClientRect();
      const vis = r.width > 0 && r.height > 0 && r.right > -sx && r.bottom > -sy &&
        (node.checkVisibility ? node.checkVisibility({opacityProperty: true, visibilityProperty: true}) : true);
      const e = {i: n, tag: node.tagName.toLowerCase(), id: node.id || '',
                 cls: (typeof node.className === 'string' ? node.className : (node.getAttribute('class') || ''))
                        .split(/\s+/).filter(Boolean),
                 visible: vis, box: [r2(r.left + sx), r2(r.top + sy), r2(r.width), r2(r.height)]};
      if (vis) {
        let t = node.innerText !== undefined ? node.innerText : node.textContent;
        if ('value' in node && typeof node.value === 'string' && node.tagName !== 'BUTTON' && node.tagName !== 'LI')
          t = (t || '') + ' ' + node.value;
        e.text = squash(t || '', 600);
        let own = '';
        for (const c of node.childNodes) if (c.nodeType === 3) own += c.textContent;
        e.own_text = squash(own, 200);
        e.style = styleOf(node, props);
        if (node.hasAttributes())
          for (const a of ATTRS)
            if (node.hasAttribute(a)) (e.attrs || (e.attrs = {}))[a] = node.getAttribute(a).slice(0, 200);
      } else {  // hidden elements: enough style to tell how they are hidden (and any extra property asked for)
        e.style = styleOf(node, hiddenProps);
      }
      els.push(e);
      cnode.setAttribute('data-rk', String(n));
    }
    if (EMPTY.has(cnode.tagName)) empty.push(cnode);
    n++;
    node = walk.nextNode(); cnode = cwalk.nextNode();
  }
  for (const c of empty) c.textContent = '';  // after the walk, so both walkers stay in step
  let html = clone.outerHTML;
  if (html.length > 2000000) html = html.slice(0, 2000000);
  const text = body ? squash(body.innerText, 20000) : '';
  return {elements: els, styles, html, text, n_elements: n, page: [W, H], scroll: [sx, sy],
          viewport: [window.innerWidth, window.innerHeight], title: document.title.slice(0, 200)};
}
""" % {"n_core": len(STYLE_PROPS)}

# Seek animations, then either report "unchanged" (same mutation count, nothing that moves, same scroll and
# stylesheets as the previous time point) or take a full snapshot. One round trip per time point.
SHOT_JS = """([t, props, maxEls, prev]) => {
  (%s)(t);
  const dynamic = document.getAnimations().length > 0 ||
    !!document.querySelector('canvas, video, audio, iframe, embed, object, animate, animateTransform, animateMotion, set');
  let sheets = '';
  try { for (const sh of document.styleSheets) { const r = sh.cssRules; sheets += r.length + ':' + (r.length ? r[r.length - 1].cssText.length : 0) + ';'; } }
  catch (e) {}
  const sig = [window.__relookMutations, window.scrollX, window.scrollY, sheets, dynamic].join('|');
  if (prev !== null && sig === prev && !dynamic) return JSON.stringify({same: true, sig});
  const snap = (%s)([props, maxEls]);
  snap.sig = sig; snap.dynamic = dynamic;
  return JSON.stringify(snap);  // a JSON string crosses the driver far faster than a structured value
}""" % (SEEK_JS.strip(), SNAPSHOT_JS.strip())

CLICK_TARGET_JS = r"""
(sel) => {
  let list;
  try { list = document.querySelectorAll(sel); } catch (e) { return {error: 'bad selector: ' + sel}; }
  for (const el of list) {
    const r0 = el.getBoundingClientRect();
    if (r0.width <= 0 || r0.height <= 0) continue;
    if (el.checkVisibility && !el.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
    el.scrollIntoView({block: 'center', inline: 'center'});
    const r = el.getBoundingClientRect();
    return {x: r.left + r.width / 2, y: r.top + r.height / 2};
  }
  return {error: list.length ? 'not visible: ' + sel : 'not found: ' + sel};
}
"""

ERROR_KINDS = ("no_code", "timeout", "crash", "js_error", "blank", "load_failed", "render_error")


# --------------------------------------------------------------------------------------------- extraction
_FENCE = re.compile(r"```[ \t]*(html|htm|xhtml)?[ \t]*\n(.*?)```", re.IGNORECASE | re.DOTALL)
_HTML_DOC = re.compile(r"(?:<!doctype html[^>]*>\s*)?<html\b.*?</html\s*>", re.IGNORECASE | re.DOTALL)
_SVG = re.compile(r"<svg\b.*?</svg\s*>", re.IGNORECASE | re.DOTALL)


def extract_code(text: str | None) -> str | None:
    """The page in a model reply, as the ArtifactsBench harness finds it: the last ```html block, else the
    last <html>…</html>, else the last <svg>…</svg>; None when there is none (an invalid render)."""
    if not text:
        return None
    blocks = [m.group(2) for m in _FENCE.finditer(text) if m.group(1)]
    if not blocks:  # an unlabeled fence counts only if it holds a document
        blocks = [m.group(2) for m in _FENCE.finditer(text) if re.search(r"<(html|body|!doctype)", m.group(2), re.I)]
    if blocks and blocks[-1].strip():
        return blocks[-1].strip()
    for pat in (_HTML_DOC, _SVG):
        found = pat.findall(text)
        if found:
            return found[-1].strip()
    return None


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()[:16]


# --------------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class RenderConfig:
    viewport: tuple[int, int] = (1280, 720)
    timepoints: tuple[int, ...] = (0, 1000, 2000)  # virtual ms after load (+ settle_ms)
    timeout_s: float = 5.0          # wall-clock budget for one render, everything included
    full_page: bool = False
    max_full_height: int = 4000     # full-page shots are clipped here
    settle_ms: int = 100            # virtual time run after load so first frames/timers have happened
    max_elements: int = 2000
    seed: int = 0                   # Math.random seed inside the page
    extra_styles: tuple[str, ...] = ()

    def __post_init__(self):
        w, h = self.viewport
        if not (64 <= int(w) <= 4096 and 64 <= int(h) <= 4096):
            raise ValueError(f"viewport {self.viewport} out of range (64..4096 each side)")
        tps = tuple(int(t) for t in self.timepoints)
        if not tps or any(t < 0 for t in tps) or list(tps) != sorted(tps):
            raise ValueError(f"timepoints must be non-negative and increasing, got {self.timepoints}")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")
        object.__setattr__(self, "viewport", (int(w), int(h)))
        object.__setattr__(self, "timepoints", tps)
        object.__setattr__(self, "extra_styles", tuple(self.extra_styles))

    def key(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


@dataclass
class RenderResult:
    valid: bool
    error: str | None = None               # one of ERROR_KINDS when invalid
    detail: str = ""                       # human-readable reason
    code: str | None = None
    screenshots: list[bytes] = field(default_factory=list)   # PNG, one per timepoint
    timepoints: list[int] = field(default_factory=list)
    dom: list[dict] = field(default_factory=list)            # one snapshot per timepoint
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)     # uncaught exceptions
    blocked_requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    popups: int = 0
    actions: list[dict] = field(default_factory=list)
    action_errors: list[str] = field(default_factory=list)
    timings: dict = field(default_factory=dict)              # load_ms, shots_ms, total_ms
    config: RenderConfig | None = None
    cached: bool = False
    _pixels: dict = field(default_factory=dict, repr=False, compare=False)
    _soups: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def elapsed_ms(self) -> float:
        return float(self.timings.get("total_ms", 0.0))

    @property
    def code_hash(self) -> str | None:
        return code_hash(self.code) if self.code is not None else None

    def pixels(self, i: int = 0) -> np.ndarray:
        """Screenshot i as an HxWx3 uint8 array (decoded once)."""
        if i not in self._pixels:
            from PIL import Image
            self._pixels[i] = np.asarray(Image.open(io.BytesIO(self.screenshots[i])).convert("RGB"))
        return self._pixels[i]

    def select(self, selector: str, at: int = 0, visible: bool = True) -> list[dict]:
        """Elements of snapshot `at` matching a CSS selector (soupsieve over the indexed DOM serialization),
        as the snapshot's element records (tag, id, cls, text, box, style). Raises ValueError on a bad selector."""
        if not self.dom or at >= len(self.dom):
            return []
        snap = self.dom[at]
        key = id(snap)
        if key not in self._soups:
            from bs4 import BeautifulSoup
            by_index = {e["i"]: e for e in snap["elements"]}
            self._soups[key] = (BeautifulSoup(snap.get("html", ""), "html.parser"), by_index)
        soup, by_index = self._soups[key]
        import soupsieve
        try:
            found = soupsieve.select(selector, soup)
        except Exception as e:
            raise ValueError(f"invalid CSS selector {selector!r}: {str(e).splitlines()[0]}") from None
        out = []
        for el in found:
            rec = by_index.get(int(el.get("data-rk", -1)))
            if rec is not None and (rec["visible"] or not visible):
                out.append(rec)
        return out

    def images(self):
        from PIL import Image
        return [Image.open(io.BytesIO(b)) for b in self.screenshots]

    def data_urls(self) -> list[str]:
        return ["data:image/png;base64," + base64.b64encode(b).decode() for b in self.screenshots]

    def save(self, out_dir: str | os.PathLike, stem: str = "shot") -> list[str]:
        """Writes the PNGs (and nothing else); returns their paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, png in enumerate(self.screenshots):
            p = out / f"{stem}_{i}_{self.timepoints[i] if i < len(self.timepoints) else i}ms.png"
            p.write_bytes(png)
            paths.append(str(p))
        return paths

    def summary(self) -> dict:
        """JSON-friendly summary without images or DOM."""
        return {"valid": self.valid, "error": self.error, "detail": self.detail, "timepoints": self.timepoints,
                "console_errors": self.console_errors[:20], "page_errors": self.page_errors[:20],
                "blocked_requests": self.blocked_requests[:50], "dialogs": self.dialogs[:20],
                "popups": self.popups, "action_errors": self.action_errors,
                "elapsed_ms": round(self.elapsed_ms, 1), "timings": self.timings}


def invalid(error: str, detail: str = "", code: str | None = None, **kw) -> RenderResult:
    return RenderResult(valid=False, error=error, detail=detail, code=code, **kw)


def is_blank(png_or_rgb, min_pixels: int = 16) -> bool:
    """Nothing visible: fewer than `min_pixels` pixels differ from the page's most common color."""
    from PIL import Image
    img = Image.open(io.BytesIO(png_or_rgb)) if isinstance(png_or_rgb, bytes) else Image.fromarray(png_or_rgb)
    colors = img.convert("RGB").getcolors(maxcolors=256)  # None: more than 256 colors, so not blank
    if colors is None:
        return False
    total = img.size[0] * img.size[1]
    return total - max(c for c, _ in colors) < min_pixels


# --------------------------------------------------------------------------------------------- browser
def find_chromium() -> str | None:
    """RELOOK_CHROMIUM, else Playwright's bundled headless shell/Chromium, else a system Chromium
    (the old headless shell first: it renders ~2x faster than the full browser)."""
    env = os.environ.get("RELOOK_CHROMIUM")
    if env:
        return env if os.path.exists(env) else None
    root = os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or os.path.expanduser("~/.cache/ms-playwright")
    for pat in ("chromium_headless_shell-*/chrome-*/*headless_shell", "chromium-*/chrome-linux*/chrome"):
        hits = sorted(glob.glob(os.path.join(root, pat)))
        if hits:
            return hits[-1]
    for name in ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


class BrowserMissing(RuntimeError):
    pass


class Renderer:
    """Async renderer: one persistent browser, a fresh isolated context per page, a bounded pool of
    concurrent renders and a content-hash cache (identical code + settings + actions render once)."""

    def __init__(self, config: RenderConfig | None = None, concurrency: int | None = None,
                 chromium: str | None = None, cache_size: int = 512):
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
        self.stats = {"renders": 0, "cache_hits": 0, "browser_restarts": 0, "timeouts": 0, "crashes": 0}

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
    async def _render_guarded(self, code: str, cfg: RenderConfig, actions: list[dict]) -> RenderResult:
        self.stats["renders"] += 1
        t0 = time.perf_counter()
        browser = self._browser
        state = _PageState()
        try:
            ctx = await asyncio.wait_for(self._new_context(browser, cfg, state, code), 10)
        except BaseException as e:
            if isinstance(e, asyncio.CancelledError) and not _timed_out(e):
                raise
            await self._restart(browser)
            browser = self._browser
            state = _PageState()
            try:
                ctx = await asyncio.wait_for(self._new_context(browser, cfg, state, code), 10)
            except BaseException as e2:
                return invalid("render_error", f"browser unavailable: {e2!r}"[:300], code)
        res = None
        try:
            res = await asyncio.wait_for(self._render_in(ctx, code, cfg, actions, state, t0), cfg.timeout_s)
        except asyncio.TimeoutError:
            self.stats["timeouts"] += 1
            res = invalid("crash" if state.crashed else "timeout",
                          "the page crashed" if state.crashed else
                          f"the page did not finish within {cfg.timeout_s:g} s (infinite loop, huge DOM, ...)", code)
        except Exception as e:  # Playwright errors: crash, closed target, ...
            msg = str(e).splitlines()[0][:300] if str(e) else repr(e)
            if state.crashed or "crash" in msg.lower() or "Target closed" in msg or "has been closed" in msg:
                self.stats["crashes"] += 1
                res = invalid("crash", f"the page crashed: {msg}", code)
            else:
                res = invalid("load_failed", msg, code)
        finally:
            closed = await _close_quietly(ctx, 3.0)
            if not closed:  # the context would not die: the browser is wedged, replace it
                await self._restart(browser)
        state.fill(res)
        res.config = cfg
        res.timings["total_ms"] = (time.perf_counter() - t0) * 1e3
        return res

    async def _new_context(self, browser, cfg: RenderConfig, state: "_PageState", code: str):
        w, h = cfg.viewport
        ctx = await browser.new_context(viewport={"width": w, "height": h}, device_scale_factor=1,
                                        service_workers="block", accept_downloads=False, locale="en-US",
                                        timezone_id="UTC", color_scheme="light", reduced_motion="no-preference")
        served = {"done": False}

        async def on_route(route):
            req = route.request
            try:
                if req.url == PAGE_URL and not served["done"] and req.is_navigation_request():
                    served["done"] = True
                    await route.fulfill(status=200, content_type="text/html; charset=utf-8", body=code)
                elif req.is_navigation_request():
                    state.blocked.append(req.url)
                    await route.fulfill(status=204)  # "No Content": the navigation is dropped, the page stays
                else:
                    state.blocked.append(req.url)
                    await route.abort("blockedbyclient")
            except Exception:
                pass

        def on_ws(ws):
            state.blocked.append(ws.url)
            asyncio.ensure_future(_quiet(ws.close()))

        await ctx.route("**/*", on_route)
        await ctx.route_web_socket(re.compile(".*"), on_ws)
        await ctx.add_init_script(SANDBOX_JS % {"seed": cfg.seed})
        # The clock is the context's: installed before the page exists, it reaches the document through an init
        # script instead of being evaluated into the blank page first. install() lets time flow until
        # pause_at(); starting 60 s early keeps pause_at() in the future.
        await ctx.clock.install(time=EPOCH_MS - 60_000)
        await ctx.clock.pause_at(EPOCH_MS)
        ctx.on("page", state.on_page)
        return ctx

    async def _render_in(self, ctx, code, cfg: RenderConfig, actions, state, t0) -> RenderResult:
        page = await ctx.new_page()
        state.main = page
        page.on("console", state.on_console)
        page.on("pageerror", state.on_pageerror)
        page.on("dialog", state.on_dialog)
        page.on("crash", state.on_crash)
        # Wait for `load` ourselves: Playwright's own wait follows a navigation the page starts during load,
        # which we answer with 204 and so never completes.
        await page.goto(PAGE_URL, wait_until="commit", timeout=cfg.timeout_s * 1000)
        while await page.evaluate("document.readyState") != "complete":
            await asyncio.sleep(0.01)
        t_load = time.perf_counter()
        await _advance(page, cfg.settle_ms, state)

        res = RenderResult(valid=True, code=code, timepoints=list(cfg.timepoints), actions=actions, config=cfg)
        for a in actions:
            err = await _do_action(page, a, state, wait_ms=cfg.timepoints[-1])
            if err:
                res.action_errors.append(err)
            await _advance(page, cfg.settle_ms, state)

        props = list(dict.fromkeys(STYLE_PROPS + list(cfg.extra_styles)))
        shooter = _Shooter(page, cfg)
        now, sig = 0, None
        for tp in cfg.timepoints:
            if tp > now:
                await _advance(page, tp - now, state)
                now = tp
            # The clock is paused, so the DOM read before the shot is the DOM the shot shows. A page whose DOM did
            # not change and where nothing moves (no animations, canvas, video, SMIL) looks the same: reuse both.
            snap = json.loads(await page.evaluate(SHOT_JS, [tp, props, cfg.max_elements, sig]))
            if snap.get("same"):
                res.screenshots.append(res.screenshots[-1])
                res.dom.append(res.dom[-1])
            else:
                res.screenshots.append(await shooter.shot())
                res.dom.append(_expand_styles(snap))
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


def _expand_styles(snap: dict) -> dict:
    """Elements arrive with an index into the snapshot's table of distinct styles; give each its dict back
    (shared between elements with the same style: treat snapshots as read-only)."""
    table = snap.pop("styles", None)
    if table is not None:
        for e in snap["elements"]:
            e["style"] = table[e["style"]]
    return snap


class _Shooter:
    """PNG screenshots over CDP with Chromium's fast encoder (a third of Playwright's per-shot cost);
    Playwright's own screenshot is the fallback and does full-page shots."""

    def __init__(self, page, cfg: RenderConfig):
        self.page, self.cfg, self.cdp = page, cfg, None

    async def shot(self) -> bytes:
        page, cfg = self.page, self.cfg
        w, h = cfg.viewport
        if cfg.full_page:
            full_h = await page.evaluate("() => Math.max(document.documentElement.scrollHeight, "
                                         "document.body ? document.body.scrollHeight : 0)")
            return await page.screenshot(type="png", full_page=True, timeout=cfg.timeout_s * 1000,
                                         clip={"x": 0, "y": 0, "width": w,
                                               "height": min(max(h, full_h), cfg.max_full_height)})
        try:
            if self.cdp is None:
                self.cdp = await page.context.new_cdp_session(page)
            r = await self.cdp.send("Page.captureScreenshot", {
                "format": "png", "optimizeForSpeed": True, "captureBeyondViewport": False,
                "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}})
            return base64.b64decode(r["data"])
        except Exception as e:
            if "crash" in str(e).lower():
                raise
            return await page.screenshot(type="png", timeout=cfg.timeout_s * 1000)


async def _advance(page, ms: int, state: "_PageState"):
    """Advance virtual time by `ms`. The clock is paused, so Python knows the page's time without asking
    (`state.vnow`). A timer callback that throws aborts Playwright's run_for with the page's exception: record it as
    an uncaught page error (as a browser would) and keep advancing to the target."""
    if ms <= 0:
        return
    target, step = state.vnow + ms, ms
    for _ in range(10_000):  # each round fires at least one timer; the render's time budget bounds the rest
        try:
            await page.clock.run_for(step)
            break
        except Exception as e:
            msg = str(e)
            if not msg.startswith("Clock.run_for:") or "crash" in msg.lower() or "closed" in msg.lower():
                raise
            state.on_pageerror(msg.split(":", 1)[1].strip().splitlines()[0])
        step = int(target - await page.evaluate("Date.now()"))  # where the clock stopped
        if step <= 0:
            break
    state.vnow = target


async def _do_action(page, a: dict, state: "_PageState", wait_ms: int = 2000) -> str | None:
    """click / type / press / hover / wait, like a user: real mouse and keyboard events at the element. A target
    that is not visible yet is waited for (virtual time, 100 ms steps, up to `wait_ms`): controls that appear
    after a timer are clicked once they show."""
    kind = next((k for k in ("click", "type", "hover", "press", "wait") if k in a), None)
    if kind == "wait":
        await _advance(page, int(a["wait"]), state)
        return None
    if kind == "press":
        await page.keyboard.press(str(a["press"]))
        return None
    if kind is None:
        return f"unknown action {a}"
    waited = 0
    while True:
        target = await page.evaluate(CLICK_TARGET_JS, str(a[kind]))
        if "error" not in target or target["error"].startswith("bad selector") or waited >= wait_ms:
            break
        await _advance(page, 100, state)
        waited += 100
    if "error" in target:
        return f"{kind}: {target['error']}"
    if kind == "hover":
        await page.mouse.move(target["x"], target["y"])
    else:
        await page.mouse.click(target["x"], target["y"])
        if kind == "type":
            await page.keyboard.type(str(a.get("text", "")))
    return None


class _PageState:
    """Everything the page did that we refused or recorded."""

    def __init__(self):
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.blocked: list[str] = []
        self.dialogs: list[str] = []
        self.popups = 0
        self.crashed = False
        self.main = None
        self.vnow = EPOCH_MS  # virtual time: the clock is paused here at install and only _advance moves it

    def on_console(self, msg):
        if msg.type == "error" and len(self.console_errors) < 100:
            text = msg.text
            if "ERR_BLOCKED_BY_CLIENT" in text or "net::ERR_" in text:
                return  # our own refusals, recorded as blocked_requests
            self.console_errors.append(text[:500])

    def on_pageerror(self, err):
        if len(self.page_errors) < 100:
            self.page_errors.append(str(err)[:500])

    def on_dialog(self, dialog):
        self.dialogs.append(f"{dialog.type}: {dialog.message[:200]}")
        asyncio.ensure_future(_quiet(dialog.dismiss()))

    def on_crash(self, _page):
        self.crashed = True

    def on_page(self, page):
        if page is not self.main and self.main is not None:
            self.popups += 1
            asyncio.ensure_future(_quiet(page.close()))

    def fill(self, res: RenderResult):
        res.console_errors = self.console_errors
        res.page_errors = self.page_errors
        res.blocked_requests = self.blocked
        res.dialogs = self.dialogs
        res.popups = self.popups


async def _quiet(coro):
    try:
        await coro
    except Exception:
        pass


def _timed_out(e: BaseException) -> bool:
    return isinstance(e, asyncio.TimeoutError)


async def _close_quietly(ctx, timeout: float) -> bool:
    try:
        await asyncio.wait_for(ctx.close(), timeout)
        return True
    except BaseException:
        return False


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


_PER_LOOP: "weakref.WeakKeyDictionary" = None  # type: ignore[assignment]


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
