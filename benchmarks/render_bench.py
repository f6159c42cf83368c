"""Render throughput: our Renderer vs an ArtifactsBench-style harness, on the same pages.

    python benchmarks/render_bench.py [--pages N] [--concurrency C] [--rounds R] [--baseline-pages B]
                                      [--no-breakdown] [--json out.json]

Both harnesses take three screenshots per page (at load, +1 s, +2 s) with the same Chromium binary and the
same launch flags, so the difference measured is the harness:

* ours: one persistent browser, a fresh context per page, C pages at a time, virtual time for the +1 s / +2 s
  shots, a DOM snapshot at each time point (see relook/render.py);
* ours, contexts reused: the opt-in training mode (render.reuse: true), each context reset between pages;
* ours, screenshots only: RenderConfig(dom=False), what an MLLM critic's renders do (it reads pixels, not the DOM);
* baseline: what ArtifactsBench-style evaluation does, one page at a time: launch a browser, set_content with
  wait_until="networkidle", screenshot, sleep 1 s for real, screenshot, sleep 1 s, screenshot, close.

Two more rows say where our time goes (they are not renderers anyone should use):

* ours, one time point: the same renderer with timepoints=(0,), i.e. what the +1 s / +2 s shots cost;
* bare isolated page: the least any renderer with a fresh context per page pays through Playwright: one persistent
  browser, new context + page, set_content, one screenshot, close, C at a time. No sandbox (no request interception,
  no real origin: storage APIs throw), no virtual time, no DOM snapshot. It bounds what ours could reach here.

The pages are four kinds (static, animated, interactive, heavy), N of each, every one distinct (its number is
in the text) so no cache can help. Every row but the baseline stays warm and renders all the pages once a round,
the rows interleaved, for R rounds; a row reports its median round and its ratio to bare is the median of the
per-round ratios. The baseline is slow by construction (>= 2 s of sleeping per page), so it runs once, on the
first B pages of each kind; renders/s is computed on what each harness actually ran.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without `pip install -e`
from relook.render import LAUNCH_ARGS, RenderConfig, Renderer, find_chromium, is_blank  # noqa: E402

KINDS = ("static", "animated", "interactive", "heavy")


# --------------------------------------------------------------------------------------------- pages
# Every page depends only on its index i, so a run is reproducible and two runs time the same work.
# The hue and the number i change per page: the HTML differs, so neither harness can reuse a render.

def static_page(i: int) -> str:
    cards = "\n".join(
        f'<div class="card"><h3>Plan {i}.{k}</h3><p>Feature list for tier {k} of page {i}.</p>'
        f'<button class="btn">Choose {k}</button></div>' for k in range(6))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Static {i}</title><style>
body {{ font-family: sans-serif; margin: 0; background: #f6f7fb; color: #222; }}
header {{ background: hsl({(i * 47) % 360}, 60%, 40%); color: white; padding: 24px 40px; }}
main {{ padding: 24px 40px; }}
.grid {{ display: grid; grid-template-columns: repeat(3, 1fr); gap: 16px; }}
.card {{ background: white; border-radius: 10px; padding: 16px; box-shadow: 0 2px 8px rgba(0,0,0,.12); }}
.btn {{ background: #2d6cdf; color: white; border: 0; border-radius: 6px; padding: 8px 14px; }}
</style></head><body>
<header><h1>Static page #{i}</h1><p>A landing page with a card grid.</p></header>
<main><h2>Pricing</h2><p>Paragraph text for page {i}: plain content, nothing moves.</p>
<div class="grid">{cards}</div></main></body></html>"""


def animated_page(i: int) -> str:
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Animated {i}</title><style>
body {{ font-family: sans-serif; margin: 0; background: #101522; color: #eee; text-align: center; }}
.box {{ width: 120px; height: 120px; margin: 40px auto; border-radius: 16px;
        background: hsl({(i * 47) % 360}, 70%, 55%); animation: spin 3s linear infinite, pulse 1s ease-in-out infinite alternate; }}
@keyframes spin {{ from {{ transform: rotate(0deg); }} to {{ transform: rotate(360deg); }} }}
@keyframes pulse {{ from {{ opacity: .4; }} to {{ opacity: 1; }} }}
canvas {{ background: #000; border: 1px solid #444; }}
</style></head><body>
<h1>Animated page #{i}</h1><div class="box"></div><canvas id="c" width="480" height="240"></canvas>
<script>
  // requestAnimationFrame loop: a ball whose position depends on time, so each shot differs
  const c = document.getElementById('c'), g = c.getContext('2d');
  function frame(t) {{
    g.fillStyle = 'rgba(0,0,0,.25)'; g.fillRect(0, 0, c.width, c.height);
    const x = 240 + 200 * Math.sin(t / 500 + {i}), y = 120 + 90 * Math.cos(t / 700);
    g.fillStyle = 'hsl(' + ((t / 10 + {i * 30}) % 360) + ',80%,60%)';
    g.beginPath(); g.arc(x, y, 18, 0, 2 * Math.PI); g.fill();
    requestAnimationFrame(frame);
  }}
  requestAnimationFrame(frame);
</script></body></html>"""


def interactive_page(i: int) -> str:
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Interactive {i}</title><style>
body {{ font-family: sans-serif; margin: 32px; }}
button {{ font-size: 16px; padding: 8px 16px; margin-right: 8px; }}
#count {{ font-size: 48px; font-weight: bold; color: hsl({(i * 47) % 360}, 60%, 40%); }}
form {{ margin-top: 24px; display: grid; gap: 8px; max-width: 360px; }}
</style></head><body>
<h1>Counter app #{i}</h1>
<div id="count">{i}</div><p>Ticks: <span id="ticks">0</span></p>
<button id="inc">+1</button><button id="dec">-1</button><button id="reset">Reset</button>
<form id="f"><input name="name" placeholder="Your name"><input name="email" type="email" placeholder="Email">
<select name="plan"><option>Free</option><option>Pro</option></select><button type="submit">Sign up</button></form>
<p id="msg"></p>
<script>
  let n = {i}, ticks = 0;
  const show = () => document.getElementById('count').textContent = n;
  document.getElementById('inc').onclick = () => {{ n++; show(); }};
  document.getElementById('dec').onclick = () => {{ n--; show(); }};
  document.getElementById('reset').onclick = () => {{ n = 0; show(); }};
  document.getElementById('f').onsubmit = (e) => {{ e.preventDefault(); document.getElementById('msg').textContent = 'Thanks!'; }};
  // a timer the +1 s / +2 s shots should see tick
  setInterval(() => document.getElementById('ticks').textContent = ++ticks, 250);
</script></body></html>"""


def heavy_page(i: int, rows: int = 400, cols: int = 8, tiles: int = 800, rules: int = 300) -> str:
    # ~3200 table cells + 800 tiles + 300 CSS rules: the kind of page where layout and DOM reads cost
    css = "\n".join(f".t{k} {{ background: hsl({(k * 7 + i) % 360}, 50%, 85%); border-left: {k % 4}px solid #345; }}"
                    for k in range(rules))
    head = "".join(f"<th>Col {c}</th>" for c in range(cols))
    body = "\n".join("<tr>" + "".join(f"<td>{i}-{r}-{c}</td>" for c in range(cols)) + "</tr>" for r in range(rows))
    tile_html = "".join(f'<div class="tile t{k % rules}">{k}</div>' for k in range(tiles))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Heavy {i}</title><style>
body {{ font-family: sans-serif; margin: 16px; }}
table {{ border-collapse: collapse; font-size: 12px; }} td, th {{ border: 1px solid #ccc; padding: 2px 6px; }}
tr:nth-child(even) {{ background: #f3f3f3; }}
.tiles {{ display: flex; flex-wrap: wrap; gap: 2px; }} .tile {{ width: 36px; height: 18px; font-size: 10px; }}
{css}
</style></head><body><h1>Heavy dashboard #{i}</h1>
<div class="tiles">{tile_html}</div>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></body></html>"""


MAKERS = {"static": static_page, "animated": animated_page, "interactive": interactive_page, "heavy": heavy_page}


def warmup_pages(n: int) -> list[str]:
    """n pages outside every measured set (indices from 10 000), kinds mixed."""
    return [MAKERS[KINDS[k % len(KINDS)]](10_000 + k) for k in range(n)]


def make_pages(n: int) -> list[tuple[str, str]]:
    """(kind, html) pairs: n of each kind, interleaved so every batch mixes kinds."""
    return [(kind, MAKERS[kind](i)) for i in range(n) for kind in KINDS]


# --------------------------------------------------------------------------------------------- ours
class Ours:
    """A Renderer kept running and warm across rounds. Warm-up renders one page per concurrent render, outside the
    measured set: browser start, first-context and JIT costs are paid once in training, and a reusing renderer
    has a context per concurrent render by then (each kept for REUSE_LIMIT pages)."""

    def __init__(self, name: str, concurrency: int, config: RenderConfig | None = None, reuse: bool = False):
        self.name, self.concurrency = name, concurrency
        self.r = Renderer(config=config or RenderConfig(), concurrency=concurrency, reuse=reuse)

    async def start(self):
        await self.r.start()
        await self.r.render_many(warmup_pages(self.concurrency), extract=False, use_cache=False)
        return self

    async def run(self, pages: list[tuple[str, str]]) -> dict:
        t0 = time.perf_counter()
        results = await self.r.render_many([h for _, h in pages], extract=False, use_cache=False)
        out = summary(self.name, len(pages), sum(res.valid for res in results), time.perf_counter() - t0)
        out["errors"] = sorted({f"{k}: {res.error}" for (k, _), res in zip(pages, results) if not res.valid})
        ms = sorted(res.elapsed_ms for res in results)  # one render's wall time under this load
        out["render_ms_p50"], out["render_ms_max"] = round(ms[len(ms) // 2]), round(ms[-1])
        return out

    async def per_kind(self, pages: list[tuple[str, str]]) -> dict:
        """Each kind as its own batch: which kind of page costs what."""
        out = {}
        for kind in KINDS:
            batch = [h for k, h in pages if k == kind]
            t0 = time.perf_counter()
            res = await self.r.render_many(batch, extract=False, use_cache=False)
            out[kind] = summary(kind, len(batch), sum(x.valid for x in res), time.perf_counter() - t0)
        return out

    async def close(self):
        await self.r.close()


# --------------------------------------------------------------------------------------------- bare page
class Bare:
    """The floor of per-page isolation: fresh context + page, set_content, one screenshot, close (the bottom rung
    of render_ladder.py, which adds our renderer's features to it one at a time)."""

    def __init__(self, concurrency: int, exe: str):
        self.name, self.concurrency, self.exe = "bare", concurrency, exe
        self.cfg = RenderConfig()

    async def start(self):
        from playwright.async_api import async_playwright
        self.pw = await async_playwright().start()
        self.browser = await self.pw.chromium.launch(executable_path=self.exe, args=LAUNCH_ARGS, headless=True)
        self.sem = asyncio.Semaphore(self.concurrency)
        await asyncio.gather(*(self._one(x) for x in warmup_pages(self.concurrency)))
        return self

    async def _one(self, html: str) -> bool:
        from render_ladder import render_at  # it imports this module's pages: import here, not at the top
        async with self.sem:
            return await render_at(self.browser, html, 0, self.cfg)

    async def run(self, pages: list[tuple[str, str]]) -> dict:
        t0 = time.perf_counter()
        ok = await asyncio.gather(*(self._one(x) for _, x in pages))
        return summary("bare", len(pages), sum(ok), time.perf_counter() - t0)

    async def close(self):
        await self.browser.close()
        await self.pw.stop()


async def bench_rows(rows: list, pages: list[tuple[str, str]], rounds: int) -> tuple[dict[str, list[dict]], dict]:
    """Every row renders the same pages once a round, rows interleaved: this kind of machine drifts by +-15%
    between minutes, and a ratio between rows is only fair when they ran side by side. Then the first row (ours,
    default) renders each kind as its own batch, still warm."""
    for row in rows:
        await row.start()
    got: dict[str, list[dict]] = {row.name: [] for row in rows}
    try:
        for _ in range(rounds):
            for row in rows:
                got[row.name].append(await row.run(pages))
        per_kind = await rows[0].per_kind(pages)
    finally:
        for row in rows:
            await row.close()
    return got, per_kind


def median_row(runs: list[dict]) -> dict:
    """The round with the median renders/s, with every round's figure beside it."""
    mid = sorted(runs, key=lambda r: r["renders_per_s"])[len(runs) // 2]
    return dict(mid, rounds=[r["renders_per_s"] for r in runs])


# --------------------------------------------------------------------------------------------- baseline
async def baseline_one(pw, exe: str, html: str) -> bool:
    """One page, the ArtifactsBench way: a fresh browser, wall-clock sleeps between the shots."""
    browser = await pw.chromium.launch(executable_path=exe, args=LAUNCH_ARGS, headless=True)
    try:
        page = await browser.new_page(viewport={"width": 1280, "height": 720})
        await page.set_content(html, wait_until="networkidle")
        shots = [await page.screenshot()]
        for _ in range(2):
            await asyncio.sleep(1)
            shots.append(await page.screenshot())
        # same validity rule as ours: three shots and not all of them blank
        return len(shots) == 3 and not all(is_blank(s) for s in shots)
    finally:
        await browser.close()


async def bench_baseline(pages: list[tuple[str, str]], exe: str) -> dict:
    from playwright.async_api import async_playwright
    async with async_playwright() as pw:  # the driver process is started outside the clock, as for ours
        t0 = time.perf_counter()
        valid = 0
        for _, html in pages:  # sequential: one browser per page, as the baseline harness does
            try:
                valid += await baseline_one(pw, exe, html)
            except Exception as e:
                print(f"baseline: page failed: {str(e).splitlines()[0][:200]}", file=sys.stderr)
        secs = time.perf_counter() - t0
    return summary("baseline", len(pages), valid, secs)


# --------------------------------------------------------------------------------------------- report
def summary(name: str, pages: int, valid: int, secs: float) -> dict:
    return {"harness": name, "pages": pages, "valid": int(valid), "seconds": round(secs, 3),
            "renders_per_s": round(pages / secs, 3) if secs > 0 else float("nan")}


def print_table(rows: list[dict]):
    print(f"{'harness':<42}{'pages':>7}{'valid':>7}{'seconds':>10}{'renders/s':>11}")
    for r in rows:
        print(f"{r['harness']:<42}{r['pages']:>7}{r['valid']:>7}{r['seconds']:>10.2f}{r['renders_per_s']:>11.2f}")


ROWS = {  # name: (what the README calls it, RenderConfig, reuse)
    "ours": ("ours (default: fresh context per page)", RenderConfig(), False),
    "ours_reuse": ("ours, contexts reused", RenderConfig(), True),
    "ours_pixels": ("ours, screenshots only (dom: false)", RenderConfig(dom=False), False),
    "ours_reuse_pixels": ("ours, reused + screenshots only", RenderConfig(dom=False), True),
    "ours_one_timepoint": ("ours, one time point", RenderConfig(timepoints=(0,)), False),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=6, help="pages of each kind (4 kinds)")
    ap.add_argument("--concurrency", type=int, default=2 * (os.cpu_count() or 1),
                    help="concurrent renders (default: two per core, the Renderer's default)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds; each row reports its median round")
    ap.add_argument("--baseline-pages", type=int, default=2, help="pages of each kind the baseline runs (0: skip)")
    ap.add_argument("--no-breakdown", dest="breakdown", action="store_false",
                    help="only the default and reuse rows and the bare row (no screenshots-only or one-time-point)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures here as JSON")
    args = ap.parse_args()
    if args.pages < 1 or args.rounds < 1 or args.concurrency < 1 or args.baseline_pages < 0:
        ap.error("--pages, --rounds and --concurrency must be >= 1, --baseline-pages >= 0")

    exe = find_chromium()
    if not exe:
        sys.exit("no Chromium found: run `make browser` or set RELOOK_CHROMIUM")
    pages = make_pages(args.pages)
    # the baseline's subset keeps the same kind mix: the first B pages of each kind
    base_pages = make_pages(min(args.baseline_pages, args.pages))
    cores = os.cpu_count()
    print(f"chromium: {exe}\nmachine: {cores} cores, {platform.machine()}, Python {platform.python_version()}")
    print(f"pages: {len(pages)} ours ({args.pages} x {len(KINDS)} kinds, concurrency {args.concurrency}, "
          f"{args.rounds} interleaved rounds), {len(base_pages)} baseline\n")

    names = list(ROWS) if args.breakdown else ["ours", "ours_reuse"]
    rows = [Ours(n, args.concurrency, ROWS[n][1], ROWS[n][2]) for n in names] + [Bare(args.concurrency, exe)]
    got, per_kind = asyncio.run(bench_rows(rows, pages, args.rounds))
    med = {name: median_row(runs) for name, runs in got.items()}
    # a ratio to bare is taken round by round (rows of a round ran side by side), then the median
    vs_bare = {name: round(statistics.median_low(r["renders_per_s"] / b["renders_per_s"]
                                                 for r, b in zip(runs, got["bare"])), 3)
               for name, runs in got.items() if name != "bare"}

    base = asyncio.run(bench_baseline(base_pages, exe)) if base_pages else None

    def ratio(row):
        return row["renders_per_s"] / base["renders_per_s"] if base and base["renders_per_s"] > 0 else None

    print_table([dict(med[n], harness=ROWS[n][0] if n in ROWS else n) for n in med] +
                ([dict(base, harness="baseline (artifactsbench)")] if base else []))
    print("\nx bare (median of the per-round ratios):")
    for name, v in vs_bare.items():
        print(f"  {ROWS[name][0]:<42} {v:.2f}   rounds: " + "  ".join(f"{r['renders_per_s']:.2f}" for r in got[name]))
    print(f"  {'bare isolated page':<42} 1      rounds: " + "  ".join(f"{r['renders_per_s']:.2f}" for r in got["bare"]))
    if base:
        print(f"\nspeed-up ours/baseline: {ratio(med['ours']):.1f}x  (on {cores} cores)")
    ours = med["ours"]
    print(f"ours, one render under load: p50 {ours['render_ms_p50']} ms, max {ours['render_ms_max']} ms")
    for name, runs in got.items():
        errs = sorted({e for r in runs for e in r.get("errors", [])})
        if errs:
            print(f"{name}, invalid renders:", ", ".join(errs))
    print("\nours, one batch per kind:")
    print_table([dict(v, harness=k) for k, v in per_kind.items()])

    if args.json:
        report = {"cpu_count": cores, "chromium": exe, "args": vars(args),
                  **{name: dict(med[name], per_kind=per_kind) if name == "ours" else med[name] for name in med},
                  "vs_bare": vs_bare, "baseline": base,
                  "speedup": round(ratio(ours), 3) if base else None,
                  "speedup_bare": round(ratio(med["bare"]), 3) if base else None}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
