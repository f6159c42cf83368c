// Seeks CSS/Web animations to the virtual time t: they are driven by the compositor, not by the fake clock.
(t) => {
  const seen = window.__relookAnims || (window.__relookAnims = new WeakMap());
  for (const a of document.getAnimations()) {
    if (!seen.has(a)) { seen.set(a, [t, a.currentTime || 0]); try { a.pause(); } catch (e) {} }
    const [t0, c0] = seen.get(a);
    try { a.currentTime = c0 + (t - t0); } catch (e) {}
  }
}
