// One pass over the DOM: visible elements with boxes, text and computed styles, and an indexed serialization
// (data-rk attributes on a clone, the live page is not touched) so critics can match CSS selectors offline.
// props: the style properties to read; nCore: how many of them are the renderer's own (the rest were asked for
// by a critic and are read on hidden elements too).
([props, maxEls, nCore]) => {
  const SKIP = new Set(['SCRIPT','STYLE','HEAD','META','LINK','NOSCRIPT','TEMPLATE','TITLE','BASE']);
  const EMPTY = new Set(['SCRIPT','STYLE','NOSCRIPT','TEMPLATE']), empty = [];
  const ATTRS = ['href', 'src', 'type', 'placeholder', 'alt', 'aria-label', 'role', 'name'];
  const hiddenProps = ['display', 'visibility', 'opacity'].concat(props.slice(nCore));
  const de = document.documentElement, body = document.body;
  const sx = window.scrollX, sy = window.scrollY;
  const W = Math.max(de.scrollWidth, body ? body.scrollWidth : 0, window.innerWidth);
  const H = Math.max(de.scrollHeight, body ? body.scrollHeight : 0, window.innerHeight);
  // Most elements share a computed style: ship each distinct one once and index it (a big page's payload is
  // mostly styles, and crossing the driver costs more than building it).
  const styles = [], styleIx = new Map();
  const styleOf = (node, names) => {
    const cs = getComputedStyle(node), vals = names.map(p => cs.getPropertyValue(p)), k = vals.join('\u0001');
    let j = styleIx.get(k);
    if (j === undefined) {
      const st = {}; names.forEach((p, q) => { st[p] = vals[q]; });
      j = styles.length; styles.push(st); styleIx.set(k, j);
    }
    return j;
  };
  // whitespace collapsed, first `max` characters; a long text is cut before the regex runs over all of it
  const squash = (t, max) => (t.length > 20 * max ? t.slice(0, 20 * max) : t).replace(/\s+/g, ' ').trim().slice(0, max);
  const r2 = (x) => Math.round(x * 100) / 100;
  const els = [];
  const walk = document.createTreeWalker(de, NodeFilter.SHOW_ELEMENT);
  let n = 0, node = walk.currentNode;
  const clone = de.cloneNode(true);
  const cwalk = document.createTreeWalker(clone, NodeFilter.SHOW_ELEMENT);
  let cnode = cwalk.currentNode;
  while (node) {
    if (n < maxEls && !SKIP.has(node.tagName)) {
      const r = node.getBoundingClientRect();
      const vis = r.width > 0 && r.height > 0 && r.right > -sx && r.bottom > -sy &&
        (node.checkVisibility ? node.checkVisibility({opacityProperty: true, visibilityProperty: true}) : true);
      const e = {i: n, tag: node.tagName.toLowerCase(), id: node.id || '',
                 cls: (typeof node.className === 'string' ? node.className : (node.getAttribute('class') || ''))
                        .split(/\s+/).filter(Boolean),
                 visible: vis, box: [r2(r.left + sx), r2(r.top + sy), r2(r.width), r2(r.height)]};
      if (vis) {
        let t = node.innerText !== undefined ? node.innerText : node.textContent;
        if ('value' in node && typeof node.value === 'string' && node.tagName !== 'BUTTON' && node.tagName !== 'LI')
          t = (t || '') + ' ' + node.value;
        e.text = squash(t || '', 600);
        let own = '';
        for (const c of node.childNodes) if (c.nodeType === 3) own += c.textContent;
        e.own_text = squash(own, 200);
        e.style = styleOf(node, props);
        if (node.hasAttributes())
          for (const a of ATTRS)
            if (node.hasAttribute(a)) (e.attrs || (e.attrs = {}))[a] = node.getAttribute(a).slice(0, 200);
      } else {  // hidden elements: enough style to tell how they are hidden (and any extra property asked for)
        e.style = styleOf(node, hiddenProps);
      }
      els.push(e);
      cnode.setAttribute('data-rk', String(n));
    }
    if (EMPTY.has(cnode.tagName)) empty.push(cnode);
    n++;
    node = walk.nextNode(); cnode = cwalk.nextNode();
  }
  for (const c of empty) c.textContent = '';  // after the walk, so both walkers stay in step
  let html = clone.outerHTML;
  if (html.length > 2000000) html = html.slice(0, 2000000);
  const text = body ? squash(body.innerText, 20000) : '';
  return {elements: els, styles, html, text, n_elements: n, page: [W, H], scroll: [sx, sy],
          viewport: [window.innerWidth, window.innerHeight], title: document.title.slice(0, 200)};
}

