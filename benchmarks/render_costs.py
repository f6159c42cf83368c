"""What three pieces of a render cost, and the alternative each was weighed against (README, "Renderer throughput").

    python benchmarks/render_costs.py [--reps N] [--json out.json]

* DOM snapshot of render_bench's heavy page (~4,000 elements): relook's JavaScript walk (snapshot.js, its
  STYLE_PROPS, and none), against CDP DOMSnapshot.captureSnapshot asked for the same computed styles; wall ms of
  one call (the page's own CPU: one renderer, nothing else running) and the reply's size. Repeated calls on one
  page find Chromium's style and layout caches warm; a render snapshots a page once, cold, so the walk is also
  timed as a render meets it (first call on a fresh page), with STYLE_PROPS and with width/height added back
  (the two layout-resolved properties the snapshot no longer reads).
* A reused context's reset navigation to about:blank: CPU ms over every process (Python, Playwright's driver,
  Chromium) per navigation.
* The blank check on a mostly white page's shot (it must decode): is_blank, and the same with the RGB -> RGB
  copy it no longer makes.
Medians over --reps (the cold walk: over 2 x --reps fresh pages). Nothing here is timed in tests.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from relook.page import RenderConfig, is_blank  # noqa: E402
from relook.sandbox import LAUNCH_ARGS, find_chromium  # noqa: E402
from relook.timeline import SNAPSHOT_JS, STYLE_PROPS  # noqa: E402
from render_bench import heavy_page, static_page  # noqa: E402


def cpu_s() -> float:
    """CPU seconds so far of this process and all its children (driver, browser processes)."""
    me = psutil.Process()
    total = 0.0
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


async def timed(fn, reps: int) -> float:
    """Median wall ms of `await fn()`."""
    got = []
    for _ in range(reps):
        t0 = time.perf_counter()
        await fn()
        got.append((time.perf_counter() - t0) * 1e3)
    return round(statistics.median(got), 1)


async def main(reps: int) -> dict:
    from playwright.async_api import async_playwright
    out = {}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=find_chromium(), args=LAUNCH_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 720})
        cdp = await page.context.new_cdp_session(page)
        await page.set_content(heavy_page(1))
        walk = f"(a) => JSON.stringify(({SNAPSHOT_JS})(a))"
        n_els = RenderConfig().max_elements  # as many elements as a render snapshots
        js = await page.evaluate(walk, [STYLE_PROPS, n_els, len(STYLE_PROPS)])
        cd = await cdp.send("DOMSnapshot.captureSnapshot", {"computedStyles": STYLE_PROPS, "includeDOMRects": True})
        out["heavy_page_snapshot"] = {
            "js_walk_ms": await timed(lambda: page.evaluate(walk, [STYLE_PROPS, n_els, len(STYLE_PROPS)]), reps),
            "js_walk_no_styles_ms": await timed(lambda: page.evaluate(walk, [[], n_els, 0]), reps),
            "js_walk_kb": len(js) // 1000,
            "cdp_domsnapshot_ms": await timed(lambda: cdp.send("DOMSnapshot.captureSnapshot", {
                "computedStyles": STYLE_PROPS, "includeDOMRects": True}), reps),
            "cdp_domsnapshot_kb": len(json.dumps(cd)) // 1000}
        c0 = cpu_s()
        n = 10 * reps
        for _ in range(n):
            await page.goto("about:blank")
        out["about_blank_cpu_ms"] = round((cpu_s() - c0) / n * 1e3, 1)
        # after the CPU count above: pages closed here take their processes (and those CPU seconds) with them
        cold = {"cold_walk_ms": list(STYLE_PROPS), "cold_walk_with_width_height_ms": [*STYLE_PROPS, "width", "height"]}
        got = {k: [] for k in cold}
        for i in range(2 * reps):
            for k, props in cold.items():  # interleaved, a fresh page for every call
                p = await browser.new_page(viewport={"width": 1280, "height": 720})
                await p.set_content(heavy_page(100 + i))
                got[k].append(await p.evaluate(
                    f"(a) => {{ const t = performance.now(); JSON.stringify(({SNAPSHOT_JS})(a)); "
                    f"return performance.now() - t; }}", [props, n_els, len(props)]))
                await p.close()
        out["heavy_page_snapshot"].update({k: round(statistics.median(v), 1) for k, v in got.items()})

        await page.set_content(static_page(1).replace("#f6f7fb", "#fff"))
        png = await page.screenshot()
        await browser.close()

    def copying(b):  # what is_blank did before: convert("RGB") copies even an RGB image
        import io

        from PIL import Image
        return Image.open(io.BytesIO(b)).convert("RGB").getcolors(maxcolors=256)

    def wall(fn):
        got = []
        for _ in range(10 * reps):
            t0 = time.perf_counter()
            fn(png)
            got.append((time.perf_counter() - t0) * 1e3)
        return round(statistics.median(got), 2)
    out["blank_check_ms"] = {"is_blank": wall(is_blank), "with_rgb_copy": wall(copying), "png_kb": len(png) // 1000}
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", metavar="PATH")
    a = ap.parse_args()
    if a.reps < 1:
        ap.error("--reps must be >= 1")
    res = asyncio.run(main(a.reps))
    print(json.dumps(res, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
