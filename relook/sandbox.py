"""The page is hostile: a browser that refuses every request (or serves it from the offline CDN mirror), answers
navigation away with 204, dismisses dialogs, closes popups, and records all of it."""
from __future__ import annotations

import asyncio
import glob
import os
import re
import shutil

from relook.timeline import sandbox_script

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



class Slot:
    """One browser context and its page, and what they render now (`code`, `state`): the route handler and the
    page's events read these, so a context reused for the next page (Renderer(reuse=True)) needs new values only."""

    def __init__(self, ctx, viewport):
        self.ctx, self.viewport = ctx, viewport
        self.page = self.cdp = None
        self.code, self.state, self.mirror, self.served = "", PageState(), None, False
        self.renders = 0

    def load(self, code: str, state: "PageState", mirror) -> None:
        self.code, self.state, self.mirror, self.served = code, state, mirror, False
        self.renders += 1

    async def new_page(self):
        """The context's page (created once), its events routed to whatever state the slot holds now."""
        if self.page is None:
            page = await self.ctx.new_page()
            page.on("console", lambda m: self.state.on_console(m))
            page.on("pageerror", lambda e: self.state.on_pageerror(e))
            page.on("dialog", lambda d: self.state.on_dialog(d))
            page.on("crash", lambda p: self.state.on_crash(p))
            self.page = page
        self.state.main = self.page
        return self.page

    async def reset(self, viewport) -> None:
        """Make a used context look new to the next page: its document unloaded (timers, workers and listeners
        go with it), the origin's storage cleared (cookies, localStorage, IndexedDB, cache storage, ...), the clock
        back at EPOCH_MS (performance.now() and animation frames restart at 0 per document: sandbox.js) and the
        viewport set."""
        await self.page.goto("about:blank")
        if self.cdp is None:
            self.cdp = await self.ctx.new_cdp_session(self.page)
        await self.cdp.send("Storage.clearDataForOrigin", {"origin": PAGE_URL.rstrip("/"), "storageTypes": "all"})
        await self.ctx.clock.set_system_time(EPOCH_MS / 1000)
        if tuple(viewport) != tuple(self.viewport):
            await self.page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
            self.viewport = tuple(viewport)


async def new_slot(browser, cfg) -> Slot:
    """A fresh, isolated browser context: every request refused or served from the mirror, navigation away
    answered 204, a paused virtual clock and the sandbox init script."""
    w, h = cfg.viewport
    ctx = await browser.new_context(viewport={"width": w, "height": h}, device_scale_factor=1,
                                    service_workers="block", accept_downloads=False, locale="en-US",
                                    timezone_id="UTC", color_scheme="light", reduced_motion="no-preference")
    slot = Slot(ctx, (w, h))

    async def on_route(route):
        req, state, mirror = route.request, slot.state, slot.mirror
        try:
            if req.url == PAGE_URL and not slot.served and req.is_navigation_request():
                slot.served = True
                await route.fulfill(status=200, content_type="text/html; charset=utf-8", body=slot.code)
            elif req.is_navigation_request():
                state.blocked.append(req.url)
                await route.fulfill(status=204)  # "No Content": the navigation is dropped, the page stays
            elif mirror is not None and (hit := mirror.resolve(req.url)) is not None:
                # a local copy of a CDN library: nothing leaves the machine, the page works as it would online
                state.mirrored.append(f"{req.url} -> {hit.source}")
                await route.fulfill(status=200, headers=hit.headers, content_type=hit.content_type,
                                    body=hit.body if hit.body is not None else hit.path.read_bytes())
            else:
                state.blocked.append(req.url)
                await route.abort("blockedbyclient")
        except Exception:
            pass

    def on_ws(ws):
        slot.state.blocked.append(ws.url)
        asyncio.ensure_future(_quiet(ws.close()))

    await ctx.route("**/*", on_route)
    await ctx.route_web_socket(re.compile(".*"), on_ws)
    # The clock is the context's: installed before the page exists, it reaches the document through an init
    # script instead of being evaluated into the blank page first. install() lets time flow until
    # pause_at(); starting 60 s early keeps pause_at() in the future. The sandbox script comes after it, so it
    # can rebase the clock's performance.now() to the document's start.
    await ctx.clock.install(time=(EPOCH_MS - 60_000) / 1000)  # Python takes seconds
    await ctx.clock.pause_at(EPOCH_MS / 1000)
    await ctx.add_init_script(sandbox_script(cfg.seed))
    ctx.on("page", lambda p: slot.state.on_page(p))
    return slot


def cdn_mirror():
    """The offline CDN mirror, or None when it is not installed (then every request is refused, as before)."""
    from relook.mirror import default_mirror
    m = default_mirror()
    return m if m.available else None


class PageState:
    """Everything the page did that we refused or recorded."""

    def __init__(self):
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.blocked: list[str] = []
        self.mirrored: list[str] = []
        self.dialogs: list[str] = []
        self.popups = 0
        self.crashed = False
        self.main = None
        self.vnow = EPOCH_MS  # virtual time: the clock is paused here at install and only timeline.advance moves it

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

    def fill(self, res):
        res.console_errors = self.console_errors
        res.page_errors = self.page_errors
        res.blocked_requests = self.blocked
        res.mirrored = self.mirrored
        res.dialogs = self.dialogs
        res.popups = self.popups


async def _quiet(coro):
    try:
        await coro
    except Exception:
        pass


async def close_quietly(ctx, timeout: float) -> bool:
    try:
        await asyncio.wait_for(ctx.close(), timeout)
        return True
    except BaseException:
        return False
