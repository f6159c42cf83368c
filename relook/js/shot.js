// One round trip per time point: seek animations, then either report "unchanged" (same mutation count, nothing
// that moves, same scroll and stylesheets as the previous time point) or take a full snapshot.
// Called as (seek, snapshot) => ([t, props, maxEls, nCore, prev, dom]) => JSON string; see render.SHOT_JS.
// dom false: the change signature only (screenshots-only renders, RenderConfig.dom).
(seek, snapshot) => ([t, props, maxEls, nCore, prev, dom]) => {
  seek(t);
  const dynamic = document.getAnimations().length > 0 ||
    !!document.querySelector('canvas, video, audio, iframe, embed, object, animate, animateTransform, animateMotion, set');
  let sheets = '';
  try {
    for (const sh of document.styleSheets) {
      const r = sh.cssRules;
      sheets += r.length + ':' + (r.length ? r[r.length - 1].cssText.length : 0) + ';';
    }
  } catch (e) {}
  const sig = [window.__relookMutations, window.scrollX, window.scrollY, sheets, dynamic].join('|');
  if (prev !== null && sig === prev && !dynamic) return JSON.stringify({same: true, sig});
  if (!dom) return JSON.stringify({sig, dynamic});
  const snap = snapshot([props, maxEls, nCore]);
  snap.sig = sig; snap.dynamic = dynamic;
  return JSON.stringify(snap);  // a JSON string crosses the driver far faster than a structured value
}
