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
  const noop = () => null;
  try { window.open = noop; window.print = noop; } catch (e) {}
  for (const k of ['RTCPeerConnection', 'webkitRTCPeerConnection', 'RTCDataChannel']) {
    try { delete window[k]; window[k] = undefined; } catch (e) {}
  }
}
