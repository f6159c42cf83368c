"""The renderer on real pages nobody here wrote (../shared/data/real-pages, when present): every page renders
valid, with the CDN libraries it loads served from the offline mirror and nothing else leaving the machine."""
import asyncio
from pathlib import Path

import pytest

from relook.render import RenderConfig, Renderer

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-pages"
PAGES = sorted(REAL.rglob("*.html")) if REAL.is_dir() else []


@pytest.mark.skipif(not PAGES, reason=f"no real pages at {REAL}")
def test_every_real_page_renders_valid():
    async def go():
        async with Renderer() as r:   # default budget, two renders per core: training conditions
            res = await r.render_many([p.read_text(encoding="utf-8", errors="replace") for p in PAGES],
                                      extract=False, use_cache=False)
            return res, dict(r.stats)

    res, stats = asyncio.run(go())
    bad = {p.name: f"{x.error}: {x.detail[:120]} refused={x.blocked_requests[:3]}"
           for p, x in zip(PAGES, res) if not x.valid}
    assert not bad, bad
    mirrored = [x for x in res if x.mirrored]
    assert len(mirrored) >= len(PAGES) // 10          # many of them load CDN libraries, served locally
    assert all(" -> " in m for x in mirrored for m in x.mirrored)
    assert stats["starved"] == 0
