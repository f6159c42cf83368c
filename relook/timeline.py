"""Virtual time inside a page: the page-side scripts, advancing the paused clock, user actions, and the shot +
DOM snapshot taken at each time point."""
from __future__ import annotations

import base64
from importlib import resources
from types import SimpleNamespace

# Page-side scripts live in relook/js/*.js, each a function expression (Playwright calls a function with its arg).
def _js(name: str) -> str:
    text = resources.files("relook").joinpath("js", f"{name}.js").read_text(encoding="utf-8")
    lines = text.splitlines()
    while lines and lines[0].lstrip().startswith("//"):  # the file's header comment
        lines.pop(0)
    return "\n".join(lines).strip()


SANDBOX_JS = _js("sandbox")              # (seed) => ...: seeded Math.random, mutation counter, no popups/WebRTC
SEEK_JS = _js("seek")                    # (t) => ...: CSS/Web animations to virtual time t
SNAPSHOT_JS = _js("snapshot")            # ([props, maxEls, nCore]) => DOM snapshot
SHOT_JS = f"({_js('shot')})({SEEK_JS}, {SNAPSHOT_JS})"   # ([t, props, maxEls, nCore, prev, dom]) => JSON string
CLICK_TARGET_JS = _js("click_target")    # (selector) => {x, y} | {error}


def sandbox_script(seed: int) -> str:
    """The init script every frame runs before its own scripts."""
    return f"({SANDBOX_JS})({int(seed)});"


# Computed styles kept for every visible element. Reading styles is most of a snapshot's cost on big pages, so
# the list is short; a critic that needs another property asks for it (RenderConfig.extra_styles). No width or
# height: the element's box has its size, and these two are the only layout-resolved reads (a cold snapshot of
# render_bench's heavy page: 86 ms with them, 76 without; benchmarks/render_costs.py).
STYLE_PROPS = [
    "color", "background-color", "background-image", "font-size", "font-weight", "font-style", "font-family",
    "text-align", "text-decoration-line", "display", "visibility", "opacity", "position", "border-radius",
]

def expand_styles(snap: dict) -> dict:
    """Elements arrive with an index into the snapshot's table of distinct styles; give each its dict back
    (shared between elements with the same style: treat snapshots as read-only)."""
    table = snap.pop("styles", None)
    if table is not None:
        for e in snap["elements"]:
            e["style"] = table[e["style"]]
    return snap


class Shooter:
    """PNG screenshots over CDP with Chromium's fast encoder (a third of Playwright's per-shot cost);
    Playwright's own screenshot is the fallback and does full-page shots."""

    def __init__(self, page, cfg, slot=None):
        self.page, self.cfg = page, cfg
        self.slot = slot if slot is not None else SimpleNamespace(cdp=None)  # a reused slot keeps its CDP session

    async def shot(self) -> bytes:
        page, cfg = self.page, self.cfg
        w, h = cfg.viewport
        if cfg.full_page:
            full_h = await page.evaluate("() => Math.max(document.documentElement.scrollHeight, "
                                         "document.body ? document.body.scrollHeight : 0)")
            return await page.screenshot(type="png", full_page=True, timeout=cfg.wall_cap_s * 1000,
                                         clip={"x": 0, "y": 0, "width": w,
                                               "height": min(max(h, full_h), cfg.max_full_height)})
        try:
            if self.slot.cdp is None:
                self.slot.cdp = await page.context.new_cdp_session(page)
            r = await self.slot.cdp.send("Page.captureScreenshot", {
                "format": "png", "optimizeForSpeed": True, "captureBeyondViewport": False,
                "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}})
            return base64.b64decode(r["data"])
        except Exception as e:
            if "crash" in str(e).lower():
                raise
            return await page.screenshot(type="png", timeout=cfg.wall_cap_s * 1000)


async def advance(page, ms: int, state):
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


async def do_action(page, a: dict, state, wait_ms: int = 2000) -> str | None:
    """click / type / press / hover / wait, like a user: real mouse and keyboard events at the element. A target
    that is not visible yet is waited for (virtual time, 100 ms steps, up to `wait_ms`): controls that appear
    after a timer are clicked once they show."""
    kind = next((k for k in ("click", "type", "hover", "press", "wait") if k in a), None)
    if kind == "wait":
        await advance(page, int(a["wait"]), state)
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
        await advance(page, 100, state)
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
