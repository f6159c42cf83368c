"""TextOnlyCritic, the paper's "no vision" ablation: static HTML/CSS analysis of the code, never the render."""
from __future__ import annotations

from relook.checklist import _name, _norm_text, _values_equal
from relook.colors import parse_rgba
from relook.critique import Critic, Critique, ItemResult, not_rendered
from relook.render import RenderResult


class TextOnlyCritic(Critic):
    """The "no vision" ablation: reads the code, never the render. Static HTML/CSS analysis of exists, text and
    style checks (a simplified cascade: <style> rules in source order, then inline styles, color and font
    properties inherited); color (pixels), position (layout), animates (time) and click are unknown -> failed."""

    name = "text"
    UNKNOWN = {"color": "its color on screen", "position": "where it sits on the page",
               "animates": "whether it moves", "click": "what clicking does"}

    async def critique(self, task, render: RenderResult) -> Critique:
        code = render.code
        if code is None:
            return not_rendered(render, self.name)
        if not task.checkable:
            raise ValueError(f"task {task.id}: items without machine checks cannot be scored by the text critic")
        from bs4 import BeautifulSoup
        soup = BeautifulSoup(code, "html.parser")
        rules = _css_rules(soup)
        results = []
        for it in task.checklist:
            try:
                ok, reason = self._check(it.check, soup, rules)
            except ValueError as e:
                ok, reason = False, f"cannot check {it.description!r}: {e}"
            results.append(ItemResult(it.id, ok, "" if ok else reason, it.description, it.weight))
        total = sum(it.weight for it in task.checklist)
        score = 100.0 * sum(it.weight for it, r in zip(task.checklist, results) if r.passed) / total
        fb = "\n".join(r.reason for r in results if not r.passed) or "All checklist items are met."
        return Critique(score=round(score, 2), feedback=fb, items=results, critic=self.name)

    def _check(self, check, soup, rules) -> tuple[bool, str]:
        import soupsieve
        kind, sel = check["kind"], check.get("selector")
        if kind in self.UNKNOWN:
            return False, f"From the code alone I cannot tell {self.UNKNOWN[kind]} ({_name(sel)})."
        try:
            els = [e for e in soupsieve.select(sel, soup) if not _hidden(e, rules)] if sel else []
        except Exception as e:
            raise ValueError(f"invalid CSS selector {sel!r}") from e
        if kind == "exists":
            need = int(check.get("min", 1))
            return (len(els) >= need, f"The code has {len(els)} {_name(sel)}; the task asks for at least {need}.")
        if kind == "text":
            want = _norm_text(check["text"])
            body = soup.body or soup
            for s in body(["script", "style"]):
                s.extract()
            texts = [e.get_text(" ") for e in els] if sel else [body.get_text(" ")]
            return (any(want in _norm_text(t) for t in texts), f"The code never shows the text \"{check['text']}\".")
        if kind == "style":
            prop = check["property"]
            for e in els:
                val = _static_style(e, prop, rules)
                if val is not None and _values_equal(prop, val, check["equals"], float(check.get("tolerance", 8))):
                    return True, ""
            return False, f"The code does not give {_name(sel)} {prop}: {check['equals']}."
        raise ValueError(f"unknown check kind {kind!r}")


_INHERITED = {"color", "font-family", "font-size", "font-weight", "font-style", "text-align", "line-height",
              "letter-spacing", "text-transform", "visibility", "cursor", "list-style-type"}


def _css_rules(soup) -> list[tuple[str, dict]]:
    import tinycss2
    rules = []
    for st in soup.find_all("style"):
        for r in tinycss2.parse_stylesheet(st.get_text(), skip_comments=True, skip_whitespace=True):
            if r.type != "qualified-rule":
                continue
            sel = tinycss2.serialize(r.prelude).strip()
            rules.append((sel, _declarations(tinycss2.serialize(r.content))))
    return rules


def _declarations(text: str) -> dict:
    import tinycss2
    out = {}
    for d in tinycss2.parse_declaration_list(text, skip_comments=True, skip_whitespace=True):
        if d.type == "declaration":
            out[d.lower_name] = tinycss2.serialize(d.value).strip()
            if d.lower_name == "background":  # the shorthand's color is what a reader sees
                col = next((tinycss2.serialize([t]) for t in d.value
                            if t.type in ("hash", "function", "ident") and parse_rgba(tinycss2.serialize([t]))), None)
                if col:
                    out.setdefault("background-color", col)
    return out


def _own_style(el, prop, rules):
    import soupsieve
    val = None
    for sel, decls in rules:
        if prop in decls:
            try:
                if soupsieve.match(sel, el):
                    val = decls[prop]
            except Exception:
                continue
    inline = _declarations(el.get("style", "")) if el.get("style") else {}
    return inline.get(prop, val)


def _static_style(el, prop, rules):
    node = el
    while node is not None and getattr(node, "name", None):
        val = _own_style(node, prop, rules)
        if val is not None or prop not in _INHERITED:
            return val
        node = node.parent
    return None


def _hidden(el, rules) -> bool:
    node = el
    while node is not None and getattr(node, "name", None):
        if _own_style(node, "display", rules) == "none" or node.has_attr("hidden"):
            return True
        node = node.parent
    return False
