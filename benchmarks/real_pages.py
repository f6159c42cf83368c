"""The renderer on real pages nobody here wrote: validity by error kind, CDN requests mirrored vs refused, renders/s.

    python benchmarks/real_pages.py [DIR ...] [--concurrency C] [--timeout S] [--no-mirror] [--hostile N] [--json out.json]

Default DIR: ../shared/data/real-pages/* beside the checkout (226 LLM-built single-file tools, simonw/tools). Pages
are rendered as they are (`extract=False`), C at a time through one Renderer, with the default CPU budget. Every
page that comes back a timeout is then rendered again alone, to tell "broken" (a timeout alone too) from "busy"
(valid alone: the budget failed its promise). The refused requests are grouped by host, so a library worth
mirroring shows up at the top. `--hostile N` mixes N copies of each hostile page (infinite loop, loop in a timer,
memory bomb, huge DOM) into the batch and reports the worst wall time a render took: the bound the budget keeps.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without `pip install -e`
from relook.render import RenderConfig, Renderer  # noqa: E402

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-pages"
HOSTILE = {
    "infinite_loop": "<html><body><h1>x</h1><script>while (true) {}</script></body></html>",
    "loop_in_timer": "<html><body><h1>x</h1><script>setTimeout(() => { for (;;) {} }, 500)</script></body></html>",
    "memory_bomb": "<html><body><h1>x</h1><script>const a = []; for (;;) a.push(new Array(1e6).fill(1.5));"
                   "</script></body></html>",
    "huge_dom": "<html><body><script>for (let i = 0; i < 3e6; i++) "
                "document.body.appendChild(document.createElement('div')).textContent = i;</script></body></html>",
}


def package(source: str) -> str:
    """'@fortawesome/fontawesome-free@6.7.2/css/all.css' -> '@fortawesome/fontawesome-free'."""
    return re.match(r"(@[^/@]+/[^/@]+|[^/@]+)", source).group(1)


def pages_in(dirs: list[Path]) -> list[Path]:
    out = []
    for d in dirs:
        out += sorted(p for p in d.rglob("*.htm*") if p.is_file())
    return out


async def run(paths: list[Path], concurrency: int, cfg: RenderConfig, hostile: int = 0) -> dict:
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in paths]
    bad = [(k, f"{html}<!-- {i} -->") for i in range(hostile) for k, html in HOSTILE.items()]
    step = max(1, len(texts) // max(1, len(bad)))   # spread through the batch, so they meet real pages
    batch = list(texts)
    for j, (_, html) in enumerate(bad):
        batch.insert(min(len(batch), (j + 1) * step + j), html)
    async with Renderer(config=cfg, concurrency=concurrency) as r:
        t0 = time.perf_counter()
        everything = await r.render_many(batch, extract=False, use_cache=False)
        secs = time.perf_counter() - t0
        by_html = dict(zip(batch, everything))
        res = [by_html[t] for t in texts]
        hostile_out = {}
        for k, html in bad:
            x = by_html[html]
            h = hostile_out.setdefault(k, {"errors": [], "wall_s_max": 0.0})
            h["errors"].append(x.error)
            h["wall_s_max"] = max(h["wall_s_max"], round(x.elapsed_ms / 1e3, 2))
        alone = {}
        for i, x in enumerate(res):  # one at a time: the machine to itself
            if x.error == "timeout":
                a = await r.render(texts[i], extract=False, use_cache=False)
                alone[paths[i].name] = {"valid": a.valid, "error": a.error, "cpu_s": a.timings.get("cpu_s"),
                                        "wall_s": round(a.elapsed_ms / 1e3, 2)}
        stats = dict(r.stats)
    kinds = collections.Counter(x.error or "valid" for x in res)
    refused = collections.Counter(urlsplit(u).netloc or u[:30] for x in res for u in x.blocked_requests)
    mirrored = collections.Counter(package(s.split(" -> ", 1)[1]) for x in res for s in x.mirrored)
    invalid = {paths[i].name: {"error": x.error, "detail": x.detail[:160], "infra": x.infra,
                               "refused": x.blocked_requests[:5]}
               for i, x in enumerate(res) if not x.valid}
    walls = sorted(x.elapsed_ms / 1e3 for x in res)
    return {"hostile": hostile_out, "pages": len(paths), "concurrency": concurrency, "timeout_s": cfg.timeout_s, "mirror": cfg.cdn_mirror,
            "seconds": round(secs, 1), "renders_per_s": round(len(paths) / secs, 2),
            "valid": kinds.get("valid", 0), "by_kind": dict(kinds), "infra": sum(x.infra for x in res),
            "pages_with_mirrored": sum(bool(x.mirrored) for x in res),
            "pages_with_refused": sum(bool(x.blocked_requests) for x in res),
            "requests_mirrored": sum(mirrored.values()), "requests_refused": sum(refused.values()),
            "mirrored_by_package": dict(mirrored.most_common()), "refused_by_host": dict(refused.most_common(25)),
            "wall_s_median": round(walls[len(walls) // 2], 2), "wall_s_max": round(walls[-1], 2),
            "timeouts_alone": alone, "invalid": invalid, "renderer_stats": stats}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="*", type=Path, help="directories of .html pages (default: the shared real pages)")
    ap.add_argument("--concurrency", type=int, default=2 * (os.cpu_count() or 1))
    ap.add_argument("--timeout", type=float, default=RenderConfig().timeout_s, help="CPU budget per page (s)")
    ap.add_argument("--no-mirror", action="store_true", help="refuse CDN libraries too")
    ap.add_argument("--limit", type=int, default=0, help="only the first N pages")
    ap.add_argument("--hostile", type=int, default=0, help="N copies of each hostile page mixed into the batch")
    ap.add_argument("--json", metavar="PATH")
    a = ap.parse_args()
    dirs = a.dirs or ([DEFAULT] if DEFAULT.is_dir() else [])
    paths = pages_in(dirs)[: a.limit or None]
    if not paths:
        sys.exit(f"no pages found in {', '.join(map(str, dirs)) or DEFAULT}")
    out = asyncio.run(run(paths, a.concurrency, RenderConfig(timeout_s=a.timeout, cdn_mirror=not a.no_mirror),
                          a.hostile))
    print(f"{out['pages']} pages, {out['concurrency']} at a time, CPU budget {out['timeout_s']:g} s, "
          f"mirror {'on' if out['mirror'] else 'off'}: {out['seconds']} s, {out['renders_per_s']} renders/s")
    print(f"valid {out['valid']}/{out['pages']}  by kind {out['by_kind']}  (infra {out['infra']})")
    print(f"requests: {out['requests_mirrored']} served from the mirror ({out['pages_with_mirrored']} pages), "
          f"{out['requests_refused']} refused ({out['pages_with_refused']} pages)")
    print("refused by host:", out["refused_by_host"])
    print("timeouts re-rendered alone:", out["timeouts_alone"] or "none")
    for name, v in out["invalid"].items():
        print(f"  invalid {name}: {v['error']}{' (infra)' if v['infra'] else ''} {v['detail'][:100]}")
    print(f"wall per page: median {out['wall_s_median']} s, max {out['wall_s_max']} s")
    for k, h in out["hostile"].items():
        print(f"hostile {k}: {h['errors']}, worst wall {h['wall_s_max']} s")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
