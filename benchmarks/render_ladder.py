"""Where a render's CPU goes: the bare isolated-page loop, with our renderer's features added one at a time.

    python benchmarks/render_ladder.py [--pages N] [--concurrency C] [--reps R]

Each rung renders the same mixed pages as render_bench.py (static, animated, interactive, heavy) and reports
renders/s and machine-wide CPU ms per page (all processes: Python, Playwright's driver, Chromium):

  bare      new context + page, set_content, one CDP screenshot, close (render_bench's "bare isolated page")
  route     + the page served from a real https origin through request interception (storage APIs work,
              every other request refused), load awaited as Renderer does
  ws        + WebSocket interception
  init      + the sandbox init script (seeded Math.random, mutation counter, window.open/print/WebRTC removed)
  clock     + Playwright's clock: installed, paused, advanced to each time point
  snap      + the DOM snapshot at each time point (skipped when nothing changed)
  3shots    + a screenshot at every time point whose DOM changed (the full Renderer loop)

It mirrors relook.render.Renderer step by step using the module's own scripts; Renderer stays the reference. Rungs
are interleaved over --reps rounds because this kind of machine drifts by +-15% between runs.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from relook.page import RenderConfig  # noqa: E402
from relook.sandbox import EPOCH_MS, LAUNCH_ARGS, PAGE_URL, PageState, find_chromium  # noqa: E402
from relook.timeline import SHOT_JS, STYLE_PROPS, advance, sandbox_script  # noqa: E402
from render_bench import make_pages  # noqa: E402

RUNGS = ["bare", "route", "ws", "init", "clock", "snap", "3shots"]


async def render_at(browser, html: str, level: int, cfg: RenderConfig) -> bool:
    """One page at rung `level` (an index into RUNGS); True when the first screenshot came back."""
    w, h = cfg.viewport
    state = PageState()
    ctx = await browser.new_context(viewport={"width": w, "height": h})
    try:
        if level >= 1:
            async def on_route(route):
                if route.request.url == PAGE_URL:
                    await route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)
                else:
                    await route.abort("blockedbyclient")
            await ctx.route("**/*", on_route)
        if level >= 2:
            await ctx.route_web_socket(re.compile(".*"), lambda ws: None)
        if level >= 3:
            await ctx.add_init_script(sandbox_script(cfg.seed))
        if level >= 4:
            await ctx.clock.install(time=(EPOCH_MS - 60_000) / 1000)
            await ctx.clock.pause_at(EPOCH_MS / 1000)
        page = await ctx.new_page()
        if level >= 1:
            await page.goto(PAGE_URL, wait_until="commit")
            while await page.evaluate("document.readyState") != "complete":
                await asyncio.sleep(0.01)
        else:
            await page.set_content(html, wait_until="load")
        cdp = await ctx.new_cdp_session(page)  # the fast-encoder shot Renderer takes
        now, sig, shots = 0, None, []
        for k, tp in enumerate(cfg.timepoints):
            if level >= 4:
                await advance(page, cfg.settle_ms if k == 0 else tp - now, state)
                now = tp
            take = k == 0
            if level >= 5:
                snap = json.loads(await page.evaluate(
                    SHOT_JS, [tp, list(STYLE_PROPS), cfg.max_elements, len(STYLE_PROPS), sig, True]))
                sig = snap["sig"]
                take = take or (level >= 6 and not snap.get("same"))
            if take:
                shots.append(await cdp.send("Page.captureScreenshot", {
                    "format": "png", "optimizeForSpeed": True,
                    "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}}))
        return bool(shots and shots[0].get("data"))
    finally:
        await ctx.close()


async def main(args):
    from playwright.async_api import async_playwright
    pages = [html for _, html in make_pages(args.pages)]
    cfg = RenderConfig()
    sem = asyncio.Semaphore(args.concurrency)

    async def one(browser, html, level):
        async with sem:
            await render_at(browser, html, level, cfg)

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=find_chromium(), args=LAUNCH_ARGS, headless=True)
        await asyncio.gather(*(one(browser, h, len(RUNGS) - 1) for h in pages[:4]))  # warm-up
        got = {r: [] for r in RUNGS}
        for _ in range(args.reps):
            for level, rung in enumerate(RUNGS):
                c0, t0 = psutil.cpu_times(), time.perf_counter()
                await asyncio.gather(*(one(browser, h, level) for h in pages))
                secs, c1 = time.perf_counter() - t0, psutil.cpu_times()
                cpu = (c1.user + c1.system) - (c0.user + c0.system)
                got[rung].append((len(pages) / secs, cpu / len(pages) * 1e3))
        await browser.close()
    print(f"{len(pages)} pages, concurrency {args.concurrency}, {args.reps} rounds (renders/s, CPU ms per page)")
    prev = None
    for rung in RUNGS:
        rps = sorted(x for x, _ in got[rung])[len(got[rung]) // 2]
        cpu = sorted(c for _, c in got[rung])[len(got[rung]) // 2]
        delta = f"{cpu - prev:+5.0f}" if prev is not None else "     "
        print(f"  {rung:8s} {rps:6.2f} r/s  {cpu:5.0f} ms {delta}   rounds: " +
              "  ".join(f"{x:.2f}/{c:.0f}" for x, c in got[rung]))
        prev = cpu


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=6, help="pages of each kind (4 kinds)")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3)
    asyncio.run(main(ap.parse_args()))
