"""ChecklistCritic, the offline vision-grounded default: each checklist item's machine check run against the
rendered page (pixels, DOM boxes, computed styles, real clicks)."""
from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import numpy as np

from relook.colors import (color_distance, color_hex, color_name, describe_color, parse_color, parse_rgba,
                           region_color)
from relook.critique import Critic, Critique, ItemResult, not_rendered
from relook.render import RenderResult, get_renderer


def _norm_text(s: str) -> str:
    return re.sub(r"\s+", " ", s or "").strip().casefold()


def _values_equal(prop: str, actual: str, expected: Any, tolerance: float = 8.0) -> bool:
    exp = str(expected).strip()
    act = (actual or "").strip()
    ca, ce = parse_rgba(act), parse_rgba(exp)
    if ce is not None and ca is not None:  # colors compared as RGB (and transparency)
        return color_distance(ca, ce) <= tolerance and (ca[3] > 0) == (ce[3] > 0)
    a, e = act.lower(), exp.lower()
    if prop == "font-weight":
        e = {"normal": "400", "bold": "700"}.get(e, e)
        a = {"normal": "400", "bold": "700"}.get(a, a)
    if prop == "text-align":
        a = {"start": "left", "end": "right", "-webkit-center": "center"}.get(a, a)
        e = {"start": "left", "end": "right"}.get(e, e)
    if prop == "font-family":  # "equals monospace" holds for '"Courier New", monospace'
        fams = [f.strip().strip("'\"").lower() for f in a.split(",")]
        return e.strip("'\"") in fams
    num = re.fullmatch(r"(-?[\d.]+)(px|%|em|rem)?", e)
    numa = re.fullmatch(r"(-?[\d.]+)(px|%|em|rem)?", a)
    if num and numa and (num.group(2) or "px") == (numa.group(2) or "px"):
        return abs(float(num.group(1)) - float(numa.group(1))) <= 0.5
    return re.sub(r"\s+", " ", a) == re.sub(r"\s+", " ", e)


def _name(sel: str | None) -> str:
    return f"`{sel}`" if sel else "the page"


_MISSING = re.compile(r"^`(.+?)` is missing: nothing on the page matches it(?: \(it should (.+)\))?\.$")


def _missing(sel: str, need: str = "") -> str:
    return f"{_name(sel)} is missing: nothing on the page matches it" + (f" (it should {need})" if need else "") + "."


def _absent(render, sel: str, need: str = "") -> str:
    """Why nothing visible matches: not in the page at all, or there but hidden."""
    if any(render.select(sel, at, visible=False) for at in range(len(render.dom))):
        return f"{_name(sel)} is in the page but not visible" + (f" (it should {need})" if need else "") + "."
    return _missing(sel, need)


def merge_feedback(reasons: list[str]) -> list[str]:
    """One line per missing element (what it should be, merged), then the other failures, in order."""
    out, where = [], {}
    for r in reasons:
        m = _MISSING.match(r)
        if not m:
            if r not in out:
                out.append(r)
            continue
        sel, need = m.group(1), m.group(2)
        if sel not in where:
            where[sel] = (len(out), [])
            out.append(None)
        if need and need not in where[sel][1]:
            where[sel][1].append(need)
    for sel, (i, needs) in where.items():
        out[i] = _missing(sel, ", ".join(needs))
    return out


def _where_is(box, W, H) -> str:
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    v = "top" if cy < H / 3 else ("bottom" if cy > 2 * H / 3 else "middle")
    hz = "left" if cx < W / 3 else ("right" if cx > 2 * W / 3 else "center")
    return f"{v}-{hz}" if v != "middle" or hz != "center" else "middle"


def position_holds(box, where: str, page_wh, fixed: bool, viewport_wh) -> bool:
    """top/bottom: starts in the top fifth / ends in the bottom fifth; left/right likewise; center: horizontal
    center within a tenth of the page's center. Fixed elements are judged against the viewport."""
    W, H = viewport_wh if fixed else page_wh
    x, y, w, h = box
    return {"top": y < H / 5, "bottom": y + h > 4 * H / 5, "left": x < W / 5, "right": x + w > 4 * W / 5,
            "center": abs(x + w / 2 - W / 2) <= W / 10}[where]


class ChecklistCritic(Critic):
    """The offline, vision-grounded default. `renderer` is used for clicks and extra style reads; by default the
    renderer of the running loop (relook.render.get_renderer)."""

    name = "checklist"

    def __init__(self, renderer=None):
        self.renderer = renderer

    async def critique(self, task, render: RenderResult) -> Critique:
        t0 = time.perf_counter()
        if render.valid and render.config is not None and not render.config.dom:
            raise ValueError("the checklist critic reads DOM snapshots: this page was rendered with "
                             "RenderConfig(dom=False) (screenshots only); render it with dom=True")
        if not render.dom:
            c = not_rendered(render, self.name)
            c.items = [ItemResult(it.id, False, "the page did not render", it.description, it.weight)
                       for it in task.checklist]
            return c
        if not task.checkable:
            missing = [it.id for it in task.checklist if it.check is None] or ["(empty checklist)"]
            raise ValueError(f"task {task.id}: items {missing} have no machine `check`; "
                             "the checklist critic cannot score it — use the MLLM critic")
        results = await asyncio.gather(*(self._item(it, render) for it in task.checklist))
        total = sum(it.weight for it in task.checklist)
        score = 100.0 * sum(it.weight for it, r in zip(task.checklist, results) if r.passed) / total
        lines = []
        if not render.valid:
            lines.append({"blank": "The page is blank: nothing is visible.",
                          "js_error": "Nothing is visible: a script error stops the page from drawing."
                          }.get(render.error, f"The page is invalid ({render.error})."))
        lines += merge_feedback([r.reason for r in results if not r.passed])
        if render.page_errors and any(not r.passed for r in results):
            lines.append(f"The page throws a script error: {render.page_errors[0][:120]}")
        feedback = "\n".join(lines) if lines else "All checklist items are met."
        return Critique(score=round(score, 2), feedback=feedback, items=list(results), critic=self.name,
                        elapsed_ms=(time.perf_counter() - t0) * 1e3)

    async def _item(self, item, render) -> ItemResult:
        try:
            ok, reason = await self._check(item.check, render, [])
        except ValueError as e:  # a bad selector in a hand-made task: the item fails, the run goes on
            ok, reason = False, f"cannot check {item.description!r}: {e}"
        return ItemResult(item.id, ok, "" if ok else reason, item.description, item.weight)

    def _indices(self, check, render) -> list[int]:
        n = len(render.dom)
        at = check.get("at")
        if at is not None:
            return [min(int(at), n - 1)]
        return list(range(n))

    async def _check(self, check: dict, render: RenderResult, actions: list) -> tuple[bool, str]:
        kind = check["kind"]
        sel = check.get("selector")
        if kind == "exists":
            need = int(check.get("min", 1))
            counts = [len(render.select(sel, at)) for at in self._indices(check, render)]
            if max(counts) >= need:
                return True, ""
            if max(counts) == 0:
                return False, _absent(render, sel, f"appear {need} times" if need > 1 else "")
            return False, f"Only {max(counts)} {_name(sel)} visible; the task asks for at least {need}."

        if kind == "text":
            want = _norm_text(check["text"])
            seen = ""
            for at in self._indices(check, render):
                if sel:
                    els = render.select(sel, at)
                    texts = [_norm_text(e.get("text", "")) for e in els]
                    if any(want in t for t in texts):
                        return True, ""
                    seen = seen or next((e.get("text", "") for e in els if e.get("text")), "")
                elif want in _norm_text(render.dom[at].get("text", "")):
                    return True, ""
            if sel and not any(render.select(sel, at) for at in self._indices(check, render)):
                return False, _absent(render, sel, f"say \"{check['text']}\"")
            where = f" in {_name(sel)}" if sel else ""
            return False, (f"The text \"{check['text']}\" is missing{where}"
                           + (f" (it says \"{seen[:60]}\")." if seen else "."))

        if kind == "style":
            prop, exp = check["property"], check["equals"]
            tol = float(check.get("tolerance", 8))
            actual = None
            for at in self._indices(check, render):
                # hidden elements count too: "the modal is display:none at load" is a fair style check
                for e in render.select(sel, at, visible=False):
                    val = (e.get("style") or {}).get(prop)
                    if val is None:
                        val = await self._extra_style(render, sel, prop, at, actions)
                    if val is not None and _values_equal(prop, val, exp, tol):
                        return True, ""
                    actual = actual if actual is not None else val
            if actual is None:
                return False, _absent(render, sel, f"have {prop} {exp}")
            shown = describe_color(parse_rgba(actual)) if parse_rgba(actual) and parse_rgba(exp) else actual
            want = describe_color(parse_rgba(exp)) if parse_rgba(exp) else exp
            return False, f"{_name(sel)} has {prop} {shown}; the task asks for {want}."

        if kind == "color":
            want = parse_color(check["color"])
            tol = float(check.get("tolerance", 40))
            at = min(int(check.get("at", 0)), len(render.screenshots) - 1)
            pixels = render.pixels(at)
            snap = render.dom[at]
            sx, sy = snap.get("scroll", [0, 0])
            full = bool(render.config and render.config.full_page)
            seen = None
            els = render.select(sel, at)
            for e in els:
                x, y, w, h = e["box"]
                box = (x, y, w, h) if full else (x - sx, y - sy, w, h)
                got = region_color(pixels, box, e.get("style"), e.get("own_text", ""))
                if got is None:
                    continue
                if color_distance(got, want) <= tol:
                    return True, ""
                seen = seen or got
            if not els:
                return False, _absent(render, sel, f"be {describe_color(want)}")
            if seen is None:
                return False, f"{_name(sel)} is outside the screenshot, so its color cannot be seen."
            if color_name(seen) == color_name(want):  # same palette word: let the hex codes tell them apart
                return False, (f"{_name(sel)} looks {color_hex(seen)}, a different shade of {color_name(want)}; "
                               f"the task asks for {color_hex(want)}.")
            return False, f"{_name(sel)} looks {describe_color(seen)}; the task asks for {describe_color(want)}."

        if kind == "position":
            where = check["where"]
            last = None
            for at in self._indices(check, render):
                snap = render.dom[at]
                for e in render.select(sel, at):
                    fixed = (e.get("style") or {}).get("position") in ("fixed", "sticky")
                    box = list(e["box"])
                    if fixed:  # page coords include the scroll offset; fixed boxes live in the viewport
                        box[0] -= snap.get("scroll", [0, 0])[0]
                        box[1] -= snap.get("scroll", [0, 0])[1]
                    if position_holds(box, where, snap["page"], fixed, snap["viewport"]):
                        return True, ""
                    last = (box, snap["viewport"] if fixed else snap["page"])
            if last is None:
                return False, _absent(render, sel, f"be at the {where}")
            box, (W, H) = last
            return False, f"{_name(sel)} is at the {_where_is(box, W, H)} of the page; the task asks for the {where}."

        if kind == "animates":
            return self._animates(check, render)

        if kind == "click":
            if not any(render.select(sel, at) for at in range(len(render.dom))):
                return False, _absent(render, sel, "be clickable")
            renderer = self.renderer or get_renderer()
            after_actions = actions + [{"click": sel}]
            after = await renderer.render(render.code, extract=False, actions=after_actions, config=render.config)
            if not after.dom:
                return False, f"Clicking {_name(sel)} breaks the page ({after.error})."
            ok, why = await self._check(check["then"], after, after_actions)
            if ok:
                return True, ""
            return False, f"After clicking {_name(sel)}: {why[0].lower() + why[1:] if why else 'nothing happens.'}"

        raise ValueError(f"unknown check kind {kind!r}")

    async def _extra_style(self, render, sel, prop, at, actions):
        """A property outside the snapshot's core set: render again asking for it (cached by the renderer)."""
        import dataclasses
        if render.config is None or prop in render.config.extra_styles:
            return None
        renderer = self.renderer or get_renderer()
        cfg = dataclasses.replace(render.config, extra_styles=tuple(render.config.extra_styles) + (prop,))
        again = await renderer.render(render.code, extract=False, actions=actions, config=cfg)
        els = again.select(sel, at) if again.dom else []
        return (els[0].get("style") or {}).get(prop) if els else None

    def _animates(self, check, render) -> tuple[bool, str]:
        sel = check.get("selector")
        n = len(render.screenshots)
        if n < 2:
            return False, "Only one screenshot was taken, so motion cannot be judged."
        H, W = render.pixels(0).shape[:2]
        if sel:
            boxes = []
            for at in range(len(render.dom)):
                snap = render.dom[at]
                sx, sy = snap.get("scroll", [0, 0])
                full = bool(render.config and render.config.full_page)
                for e in render.select(sel, at):
                    x, y, w, h = e["box"]
                    boxes.append((x, y, w, h) if full else (x - sx, y - sy, w, h))
            if not boxes:
                return False, _absent(render, sel, "move over time")
            x0 = max(0, int(min(b[0] for b in boxes)))
            y0 = max(0, int(min(b[1] for b in boxes)))
            x1 = min(W, int(max(b[0] + b[2] for b in boxes)) + 1)
            y1 = min(H, int(max(b[1] + b[3] for b in boxes)) + 1)
            if x1 <= x0 or y1 <= y0:
                return False, f"{_name(sel)} is outside the screenshot, so its motion cannot be seen."
        else:
            x0, y0, x1, y1 = 0, 0, W, H
        area = (x1 - x0) * (y1 - y0)
        need = max(40, float(check.get("threshold", 0.0005)) * area)
        for i in range(n - 1):
            a = render.pixels(i)[y0:y1, x0:x1].astype(np.int16)
            b = render.pixels(i + 1)[y0:y1, x0:x1].astype(np.int16)
            if int((np.abs(a - b).max(axis=2) > 24).sum()) >= need:
                return True, ""
        return False, (f"Nothing moves in {_name(sel)}: the screenshots at load, +1 s and +2 s are the same there."
                       if sel else "Nothing on the page moves between the screenshots at load, +1 s and +2 s.")
