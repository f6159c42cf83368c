// Runs before any page script, in every frame: called as (seed) => ..., see render.sandbox_script().
(seed) => {
  let s = seed >>> 0;  // seeded Math.random: identical code renders identically
  Math.random = function () { s = (s + 0x6D2B79F5) >>> 0; let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
  // counts DOM mutations so the renderer can tell that nothing changed between two time points
  let muts = 0;
  Object.defineProperty(window, '__relookMutations', {get: () => muts});
  try { new MutationObserver(l => { muts += l.length; }).observe(document,
        {subtree: true, childList: true, attributes: true, characterData: true}); } catch (e) {}
  // resolves at `load`: the renderer waits for it in one round trip instead of polling readyState
  let loaded;
  const onLoad = new Promise(r => { loaded = r; });
  try { Object.defineProperty(window, '__relookLoaded', {value: onLoad}); } catch (e) {}
  // readystatechange too: a page that starts a navigation while loading (answered 204) never fires `load`
  window.addEventListener('load', () => loaded(true), {once: true, capture: true});
  document.addEventListener('readystatechange', () => { if (document.readyState === 'complete') loaded(true); });
  // Virtual time restarts at 0 for every document: Playwright's clock counts from its install (and a reused
  // context's from its first page), so a page animating from performance.now() or rAF timestamps would otherwise
  // draw a frame that depends on what was rendered before it.
  // The start is read once every init script has run (the clock replays its log in later ones): at the first
  // call from the page, or when parsing ends, both before the renderer first moves time.
  try {
    const perf = window.performance, now = perf.now.bind(perf);
    let t0 = null;
    const start = () => (t0 === null ? (t0 = now()) : t0);
    perf.now = () => now() - start();
    // frames every 16 ms of the document's own time (the clock counts frames from its install, which a fresh
    // context does a few real milliseconds before the page exists): the same frames on every render
    const later = window.setTimeout.bind(window), cancel = window.clearTimeout.bind(window);
    window.requestAnimationFrame = (cb) => later(() => cb(perf.now()), 16 - (perf.now() % 16));
    window.cancelAnimationFrame = (id) => cancel(id);
    document.addEventListener('readystatechange', start, {once: true});
  } catch (e) {}
  const noop = () => null;
  try { window.open = noop; window.print = noop; } catch (e) {}
  for (const k of ['RTCPeerConnection', 'webkitRTCPeerConnection', 'RTCDataChannel']) {
    try { delete window[k]; window[k] = undefined; } catch (e) {}
  }
}
