// The centre of the first visible element matching a selector, scrolled into view (where a user would click).
(sel) => {
  let list;
  try { list = document.querySelectorAll(sel); } catch (e) { return {error: 'bad selector: ' + sel}; }
  for (const el of list) {
    const r0 = el.getBoundingClientRect();
    if (r0.width <= 0 || r0.height <= 0) continue;
    if (el.checkVisibility && !el.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
    el.scrollIntoView({block: 'center', inline: 'center'});
    const r = el.getBoundingClientRect();
    return {x: r.left + r.width / 2, y: r.top + r.height / 2};
  }
  return {error: list.length ? 'not visible: ' + sel : 'not found: ' + sel};
}
