"""relook.render: extraction, temporal shots, DOM snapshot, validity, interaction, cache, sync-in-a-loop."""
import asyncio
import io

import numpy as np
import pytest
from PIL import Image

from relook import render as R

STATIC = """<!doctype html><html><head><title>Shop</title><style>
header { background: #000080; color: #fff; padding: 20px; }
.card { display: inline-block; width: 200px; height: 120px; margin: 10px; background: #eee; }
</style></head><body><header id="top" class="bar main">ACME Store</header>
<div class="card">One</div><div class="card">Two</div><button id="buy">Buy now</button>
<p id="msg" style="display:none">Thanks!</p>
<script>document.getElementById('buy').onclick = () => { document.getElementById('msg').style.display = 'block'; };
console.error('a console error');</script></body></html>"""

ANIMATED = """<html><head><style>
@keyframes slide { from { transform: translateX(0); } to { transform: translateX(800px); } }
#box { width: 80px; height: 80px; background: #e00; animation: slide 4s linear infinite; }
</style></head><body><div id="box"></div></body></html>"""

COUNTER = """<html><body><h1 id="n">0</h1>
<script>let n = 0; setInterval(() => { document.getElementById('n').textContent = ++n; }, 500);</script></body></html>"""


def png_size(png: bytes):
    return Image.open(io.BytesIO(png)).size


# ------------------------------------------------------------------------------------------------ extraction
def test_extract_prefers_last_html_fence():
    text = "plan\n```html\n<p>first</p>\n```\nthen\n```html\n<html><body>second</body></html>\n```\nbye"
    assert R.extract_code(text) == "<html><body>second</body></html>"


def test_extract_html_document_and_doctype():
    text = "Sure! <!DOCTYPE html>\n<html><body>a</body></html> and <html><body>b</body></html> done"
    assert R.extract_code(text) == "<html><body>b</body></html>"
    assert R.extract_code("x <!doctype html><html lang=en><body>a</body></html>").startswith("<!doctype html>")


def test_extract_svg_fallback_and_none():
    assert R.extract_code('here: <svg width="10"><rect/></svg>') == '<svg width="10"><rect/></svg>'
    assert R.extract_code("no code at all") is None
    assert R.extract_code("") is None
    assert R.extract_code(None) is None
    assert R.extract_code("```python\nprint(1)\n```") is None
    assert R.extract_code("```html\n<html><body>cut off") is None  # unterminated fence, no </html>


def test_extract_unlabeled_fence_with_document():
    assert R.extract_code("```\n<html><body>x</body></html>\n```") == "<html><body>x</body></html>"


# ------------------------------------------------------------------------------------------------ rendering
def test_static_page_three_shots_and_dom():
    res = R.render(STATIC, extract=False)
    assert res.valid and res.error is None
    assert res.timepoints == [0, 1000, 2000]
    assert len(res.screenshots) == 3 and all(png_size(s) == (1280, 720) for s in res.screenshots)
    assert res.screenshots[0] == res.screenshots[2]  # nothing moves
    dom = res.dom[0]
    header = next(e for e in dom["elements"] if e["id"] == "top")
    assert header["tag"] == "header" and header["cls"] == ["bar", "main"] and header["visible"]
    assert header["text"] == "ACME Store"
    assert header["style"]["background-color"] == "rgb(0, 0, 128)"
    x, y, w, h = header["box"]
    assert y < 20 and w > 1000 and h > 30
    assert not next(e for e in dom["elements"] if e["id"] == "msg")["visible"]
    assert "ACME Store" in dom["text"] and "Thanks" not in dom["text"]
    assert 'data-rk="' in dom["html"]
    assert res.console_errors == ["a console error"]
    # the screenshot really shows the navy header
    px = res.pixels(0)[int(y + h / 2), int(x + 5)]
    assert tuple(px) == (0, 0, 128)


def test_screenshots_only_render_has_the_same_shots_and_no_dom():
    # dom=False (the renders of a critic that reads pixels only) skips the snapshots, not the shots
    full = R.render(STATIC, extract=False)
    shots = R.render(STATIC, extract=False, config=R.RenderConfig(dom=False))
    assert shots.valid and shots.dom == [] and full.dom
    assert shots.screenshots == full.screenshots
    a, b = (R.render(COUNTER, extract=False, config=R.RenderConfig(dom=d)) for d in (True, False))
    assert b.screenshots == a.screenshots and b.screenshots[0] != b.screenshots[2]  # the DOM changes over time
    assert len(a.dom) == 3 and b.dom == []
    assert R.RenderConfig(dom=False).key() != R.RenderConfig().key()  # the cache keeps them apart


def test_the_checklist_critic_refuses_a_render_without_dom():
    from relook.critic import ChecklistCritic
    from relook.tasks import parse_task
    task = parse_task({"id": "t", "prompt": "a page", "checklist": [
        {"id": "h", "description": "a heading", "check": {"kind": "exists", "selector": "h1"}}]})
    res = R.render("<html><body><h1>Hi</h1></body></html>", extract=False, config=R.RenderConfig(dom=False))
    with pytest.raises(ValueError, match="dom=False"):
        ChecklistCritic().critique_sync(task, res)


def test_animation_advances_in_virtual_time():
    res = R.render(ANIMATED, extract=False)
    assert res.valid
    xs = [next(e for e in d["elements"] if e["id"] == "box")["box"][0] for d in res.dom]
    # 800 px per 4 s: +1 s moves the box ~200 px, deterministically
    assert xs[1] - xs[0] == pytest.approx(200, abs=8) and xs[2] - xs[1] == pytest.approx(200, abs=8)
    a, b = res.pixels(0), res.pixels(1)
    assert (np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 30).sum() > 1000
    assert res.elapsed_ms < 2000  # the +1 s / +2 s shots cost no wall-clock seconds


def test_timers_follow_virtual_clock():
    res = R.render(COUNTER, extract=False)
    texts = [next(e for e in d["elements"] if e["id"] == "n")["text"] for d in res.dom]
    assert texts == ["0", "2", "4"]


def test_canvas_requestanimationframe_moves():
    page = """<html><body><canvas id=c width=400 height=100></canvas><script>
    let x = 0; const g = document.getElementById('c').getContext('2d');
    (function f() { x += 3; g.clearRect(0, 0, 400, 100); g.fillStyle = '#00f'; g.fillRect(x % 380, 10, 20, 20);
      requestAnimationFrame(f); })();</script></body></html>"""
    res = R.render(page, extract=False)
    assert res.valid
    blue = [int(((p[:, :, 2] > 200) & (p[:, :, 0] < 60)).sum()) for p in map(res.pixels, range(3))]
    assert all(b == 400 for b in blue)
    assert res.screenshots[0] != res.screenshots[1]


def test_custom_timepoints_viewport_full_page():
    tall = "<html><body style='margin:0'><div style='height:1500px;background:#0a0'>tall</div></body></html>"
    cfg = R.RenderConfig(viewport=(640, 480), timepoints=(0, 500), full_page=True)
    res = R.render(tall, extract=False, config=cfg)
    assert res.valid and res.timepoints == [0, 500] and len(res.screenshots) == 2
    assert png_size(res.screenshots[0]) == (640, 1500)
    res = R.render(tall, extract=False, config=R.RenderConfig(viewport=(640, 480)))
    assert png_size(res.screenshots[0]) == (640, 480)


@pytest.mark.parametrize("bad", [dict(viewport=(10, 10)), dict(timepoints=(1000, 0)), dict(timepoints=()),
                                 dict(timeout_s=0)])
def test_render_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        R.RenderConfig(**bad)


# ------------------------------------------------------------------------------------------------ validity
def test_no_code_is_invalid():
    res = R.render("I would write a page with a header.")
    assert not res.valid and res.error == "no_code" and res.screenshots == []


@pytest.mark.parametrize("page", ["<html><body></body></html>",
                                  "<html><body style='background:#123456'></body></html>",
                                  "<html><body><div style='color:white'>white on white</div></body></html>",
                                  "<html><body><p style='visibility:hidden'>hidden</p></body></html>"])
def test_blank_pages_are_invalid(page):
    res = R.render(page, extract=False)
    assert not res.valid and res.error == "blank"


def test_script_error_with_nothing_visible_is_js_error():
    res = R.render("<html><body><script>undefinedFn();</script></body></html>", extract=False)
    assert not res.valid and res.error == "js_error" and "undefinedFn" in res.page_errors[0]


def test_script_error_on_visible_page_stays_valid_and_is_recorded():
    res = R.render("<html><body><h1>Hello</h1><script>null.x</script></body></html>", extract=False)
    assert res.valid and res.page_errors


def test_content_appearing_later_is_not_blank():
    page = "<html><body><script>setTimeout(() => document.body.innerHTML = '<h1>Late</h1>', 1500)</script></body></html>"
    res = R.render(page, extract=False)
    assert res.valid and "Late" in res.dom[2]["text"] and "Late" not in res.dom[0]["text"]


def test_svg_output_renders():
    res = R.render('Here it is: <svg width="200" height="200"><circle cx="100" cy="100" r="80" fill="red"/></svg>')
    assert res.valid


# ------------------------------------------------------------------------------------------------ interaction
def test_click_action_then_shots():
    res = R.render(STATIC, extract=False, actions=[{"click": "#buy"}])
    assert res.valid and not res.action_errors
    msg = next(e for e in res.dom[0]["elements"] if e["id"] == "msg")
    assert msg["visible"] and msg["text"] == "Thanks!"


def test_type_action_and_missing_target():
    page = """<html><body><input id="q" placeholder="name"><p id="out"></p><script>
    q.addEventListener('input', () => out.textContent = 'Hello ' + q.value);</script></body></html>"""
    res = R.render(page, extract=False, actions=[{"type": "#q", "text": "Ada"}])
    assert next(e for e in res.dom[0]["elements"] if e["id"] == "out")["text"] == "Hello Ada"
    res = R.render(page, extract=False, actions=[{"click": "#nope"}])
    assert res.valid and res.action_errors == ["click: not found: #nope"]


# ------------------------------------------------------------------------------------------------ pool/cache
def test_identical_code_renders_once():
    r = R.default_renderer()
    page = "<html><body><h1>cache me %s</h1></body></html>" % id(r)
    before = r.stats["renders"]
    results = R.render_many([page] * 5, extract=False)
    assert all(x.valid for x in results)
    assert r.stats["renders"] - before == 1
    assert sum(x.cached for x in results) == 4
    assert R.render(page, extract=False).cached


def test_sync_wrapper_inside_running_event_loop():
    async def inside_jupyter_like_loop():
        return R.render("<html><body><h1>in a loop</h1></body></html>", extract=False)
    assert asyncio.run(inside_jupyter_like_loop()).valid


def test_async_api_in_callers_loop():
    async def main():
        async with R.Renderer(concurrency=2) as r:
            return await r.render_many(["<html><body><p>a</p></body></html>", "no code"], extract=True)
    a, b = asyncio.run(main())
    assert a.valid  # a single letter is not a blank page
    assert b.error == "no_code"


def test_result_save_and_summary(tmp_path):
    res = R.render(STATIC, extract=False)
    paths = res.save(tmp_path)
    assert len(paths) == 3 and all(open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n" for p in paths)
    s = res.summary()
    assert s["valid"] and s["elapsed_ms"] > 0 and "screenshots" not in s


def test_snapshot_styles_are_complete_per_element():
    # the snapshot ships each distinct style once; every element must still carry its own full style dict
    cards = "".join(f'<div class="card">{k}</div>' for k in range(30))
    res = R.render(f"<html><body><style>.card {{ color: rgb(1, 2, 3); }}</style><h1>t</h1>{cards}</body></html>",
                   extract=False)
    dom = res.dom[0]
    assert "styles" not in dom
    els = [e for e in dom["elements"] if "card" in e["cls"]]
    assert len(els) == 30 and all(e["style"]["color"] == "rgb(1, 2, 3)" for e in els)
    h1 = next(e for e in dom["elements"] if e["tag"] == "h1")
    assert h1["style"]["font-size"] != els[0]["style"]["font-size"]
    assert set(h1["style"]) >= set(R.STYLE_PROPS)


def test_render_bench_runs(tmp_path):
    # the benchmark is not timed here, only kept working: every harness renders every page
    import json
    import subprocess
    import sys
    from pathlib import Path
    out = tmp_path / "bench.json"
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "render_bench.py"
    subprocess.run([sys.executable, str(bench), "--pages", "1", "--baseline-pages", "1", "--concurrency", "2",
                    "--rounds", "2", "--json", str(out)], check=True, capture_output=True, timeout=300)
    rep = json.loads(out.read_text())
    for key in ("ours", "ours_reuse", "ours_pixels", "ours_reuse_pixels", "ours_one_timepoint", "bare", "baseline"):
        assert rep[key]["pages"] == 4 and rep[key]["valid"] == 4, (key, rep[key])
    for key in ("ours", "ours_reuse", "ours_pixels", "ours_reuse_pixels", "bare"):
        assert len(rep[key]["rounds"]) == 2, key
    assert set(rep["vs_bare"]) == {"ours", "ours_reuse", "ours_pixels", "ours_reuse_pixels", "ours_one_timepoint"}
    assert rep["speedup"] > 1


def test_render_ladder_runs():
    # the attribution behind the README's per-feature costs: every rung renders, nothing is timed here
    import subprocess
    import sys
    from pathlib import Path
    ladder = Path(__file__).resolve().parents[1] / "benchmarks" / "render_ladder.py"
    p = subprocess.run([sys.executable, str(ladder), "--pages", "1", "--reps", "1", "--concurrency", "2"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    rungs = [ln.split()[0] for ln in p.stdout.splitlines()[1:] if ln.strip()]
    assert rungs == ["bare", "route", "ws", "init", "clock", "snap", "3shots"]


def test_page_time_is_2025_and_frames_do_not_depend_on_history():
    page = ("<html><body><p id=d></p><canvas id=c width=200 height=60></canvas><script>"
            "document.getElementById('d').textContent = new Date().toISOString() + ' ' + performance.now();"
            "const g = document.getElementById('c').getContext('2d');"
            "function f(t) { g.clearRect(0, 0, 200, 60); g.fillRect(90 + 80 * Math.sin(t / 300), 20, 20, 20);"
            " requestAnimationFrame(f); } requestAnimationFrame(f);</script></body></html>")

    async def go():
        async with R.Renderer(concurrency=1) as iso:
            a = await iso.render(page, extract=False)
        async with R.Renderer(concurrency=1, reuse=True) as r:   # the same context serves page after page
            b = [await r.render(page + f"<!-- {i} -->", extract=False) for i in range(3)]
        return a, b

    a, b = asyncio.run(go())
    assert a.select("#d")[0]["text"] == "2025-01-01T00:00:00.000Z 0"
    assert a.screenshots[1] != a.screenshots[2]                       # it animates...
    for x in b:                                                     # ...and every render draws the same frames
        assert x.select("#d")[0]["text"] == "2025-01-01T00:00:00.000Z 0" and x.screenshots == a.screenshots


def test_reused_context_forgets_the_previous_page():
    writer = ("<html><body><h1 id=h>w</h1><script>localStorage.setItem('k', 'left behind');"
              "document.cookie = 'c=1'; sessionStorage.setItem('s', 'x'); setInterval(() => document.title = 'x', 10);"
              "indexedDB.open('db', 1);</script></body></html>")
    reader = ("<html><body><h1 id=h></h1><script>indexedDB.databases().then(d => {"
              "document.getElementById('h').textContent = [localStorage.getItem('k'), document.cookie,"
              " sessionStorage.getItem('s'), d.length, document.title].join('|'); });</script></body></html>")

    async def go():
        async with R.Renderer(concurrency=1, reuse=True) as r:
            await r.render(writer, extract=False)
            return await r.render(reader, extract=False), len(r._idle)

    res, idle = asyncio.run(go())
    assert res.select("#h")[0]["text"] == "|||0|" and idle == 1


def test_render_costs_runs(tmp_path):
    # the README's "alternatives weighed" figures: every measurement comes back, nothing is timed here
    import json
    import subprocess
    import sys
    from pathlib import Path
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "render_costs.py"
    out = tmp_path / "costs.json"
    subprocess.run([sys.executable, str(script), "--reps", "1", "--json", str(out)], check=True, capture_output=True,
                   timeout=300)
    rep = json.loads(out.read_text())
    snap = rep["heavy_page_snapshot"]
    assert snap["js_walk_kb"] > 100 and snap["cdp_domsnapshot_kb"] > 100  # both read the whole heavy page
    assert rep["about_blank_cpu_ms"] > 0 and rep["blank_check_ms"]["is_blank"] > 0
