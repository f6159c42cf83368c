"""A seeded synthetic web-coding world: tasks, their checklists, reference pages and flawed variants.

Every task is a *spec*: a few components (header, button, cards, a counter, an animated box, ...) with their
parameters. From the spec come the prompt, the checklist (with machine checks for the offline critic), the
reference page, and flawed pages (wrong color, missing element, wrong text, dead button, no animation, ...) —
the kind of mistakes the critic names and the warm-start demonstrations teach the policy to fix.

    python -m relook.synth --out data/tasks --seed 0 --train 300 --eval 200
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from relook.tasks import parse_task, save_tasks

COLORS = {  # name -> hex; distinct enough that the critic's 40-unit tolerance never confuses two of them
    "red": "#e53935", "green": "#43a047", "blue": "#1e88e5", "navy": "#1a237e", "orange": "#fb8c00",
    "purple": "#8e24aa", "teal": "#00897b", "pink": "#d81b60", "black": "#212121", "gray": "#9e9e9e",
}
DARK = {"red", "green", "blue", "navy", "purple", "teal", "pink", "black"}
BRANDS = ["Sunrise Bakery", "Blue Harbor", "Maple Studio", "Pixel Garden", "Cedar Books", "Lunar Cafe",
          "Nova Fitness", "River Tours", "Golden Gym", "Cloud Notes", "Urban Plants", "Echo Music",
          "Silver Spoon", "Happy Paws", "Iron Forge", "Green Valley", "Ocean Breeze", "Star Cinema"]
HEADINGS = ["Welcome", "Our Menu", "Latest News", "Fresh Deals", "About Us", "Hello World", "Top Picks",
            "Daily Specials", "New Arrivals", "Meet the Team", "Plan Your Trip", "Join the Club"]
LABELS = ["Order now", "Sign up", "Learn more", "Get started", "Book a table", "Subscribe", "Contact us",
          "Buy now", "Start", "Show more", "Join", "Download"]
MESSAGES = ["Thanks for visiting", "Your order is ready", "Hello there", "Welcome back", "See you soon",
            "Have a nice day", "You are in", "Ready to go", "Great choice", "All done"]
FOOTERS = ["Made with care", "All rights reserved", "Open every day", "Follow us online", "Call us anytime",
           "Since 1999"]
WORDS = ["Coffee", "Tea", "Cake", "Bread", "Pizza", "Salad", "Soup", "Juice", "Apple", "Mango", "Lemon",
         "Cherry", "Music", "Books", "Games", "Sports", "Travel", "Photos"]
REVEAL_LABELS = ["Show message", "Reveal", "Click me", "Open", "Say hello", "Show more"]
COUNT_LABELS = ["Add one", "Plus", "Count", "Increase", "Add"]
TOGGLE_LABELS = ["Change color", "Toggle", "Paint", "Switch", "Color it"]

CATEGORIES = ("layout", "style", "interaction", "time")


def _fg(color: str) -> str:
    return "#ffffff" if color in DARK else "#212121"


def _other(rng: random.Random, pool, current):
    return rng.choice([x for x in pool if x != current])


# ------------------------------------------------------------------------------------------- components
# Each component: sample(rng) -> params; html(p, flaw) -> (body, css, js); phrase(p); items(p);
# flaws: the mistakes it can carry. A flaw is applied by rewriting params or dropping code, never by hand.

class Component:
    kind = ""
    category = "layout"
    flaws: tuple[str, ...] = ()

    def sample(self, rng):
        raise NotImplementedError

    def html(self, p, flaw=None):
        raise NotImplementedError

    def phrase(self, p):
        raise NotImplementedError

    def items(self, p):
        raise NotImplementedError

    def mutate(self, rng, p, flaw):
        """Params for a flaw that changes values (wrong color/text/place); None when the flaw is structural."""
        return None


class Header(Component):
    kind, category, flaws = "header", "layout", ("missing", "wrong_text", "wrong_color", "misplaced")

    def sample(self, rng):
        return {"text": rng.choice(BRANDS), "bg": rng.choice(list(COLORS))}

    def html(self, p, flaw=None):
        pos = "position:fixed;bottom:0;left:0;right:0;" if flaw == "misplaced" else ""
        return (f'<header style="{pos}background:{COLORS[p["bg"]]};color:{_fg(p["bg"])};padding:24px;font-size:28px">'
                f'{p["text"]}</header>', "", "")

    def phrase(self, p):
        return f"a {p['bg']} header at the top that says '{p['text']}'"

    def items(self, p):
        return [("header-text", f"The header says '{p['text']}'.", {"kind": "text", "selector": "header", "text": p["text"]}),
                ("header-color", f"The header is {p['bg']}.", {"kind": "color", "selector": "header", "color": COLORS[p["bg"]]}),
                ("header-top", "The header is at the top of the page.", {"kind": "position", "selector": "header", "where": "top"})]

    def mutate(self, rng, p, flaw):
        if flaw == "wrong_text":
            return {**p, "text": _other(rng, BRANDS, p["text"])}
        if flaw == "wrong_color":
            return {**p, "bg": _other(rng, COLORS, p["bg"])}


class Title(Component):
    kind, category, flaws = "title", "style", ("missing", "wrong_text", "wrong_color", "wrong_size")

    def sample(self, rng):
        return {"text": rng.choice(HEADINGS), "color": rng.choice(list(COLORS)), "size": rng.choice([32, 40, 48])}

    def html(self, p, flaw=None):
        return (f'<h1 id="title" style="color:{COLORS[p["color"]]};font-size:{p["size"]}px;text-align:center">'
                f'{p["text"]}</h1>', "", "")

    def phrase(self, p):
        return f"a centered {p['color']} heading '{p['text']}' in {p['size']}px type"

    def items(self, p):
        return [("title-text", f"The heading reads '{p['text']}'.", {"kind": "text", "selector": "#title", "text": p["text"]}),
                ("title-color", f"The heading text is {p['color']}.",
                 {"kind": "style", "selector": "#title", "property": "color", "equals": COLORS[p["color"]]}),
                ("title-size", f"The heading is {p['size']}px.",
                 {"kind": "style", "selector": "#title", "property": "font-size", "equals": f"{p['size']}px"})]

    def mutate(self, rng, p, flaw):
        if flaw == "wrong_text":
            return {**p, "text": _other(rng, HEADINGS, p["text"])}
        if flaw == "wrong_color":
            return {**p, "color": _other(rng, COLORS, p["color"])}
        if flaw == "wrong_size":
            return {**p, "size": _other(rng, [24, 32, 40, 48, 56], p["size"])}


class Button(Component):
    kind, category, flaws = "button", "layout", ("missing", "wrong_text", "wrong_color", "misplaced")

    def sample(self, rng):
        return {"label": rng.choice(LABELS), "bg": rng.choice(sorted(DARK)), "align": rng.choice(["left", "center", "right"])}

    def html(self, p, flaw=None):
        return (f'<div style="text-align:{p["align"]};padding:16px"><button id="cta" style="background:{COLORS[p["bg"]]};'
                f'color:#ffffff;border:0;padding:14px 28px;font-size:18px">{p["label"]}</button></div>', "", "")

    def phrase(self, p):
        where = "centered" if p["align"] == "center" else f"on the {p['align']}"
        return f"a {p['bg']} '{p['label']}' button {where}"

    def items(self, p):
        return [("cta-exists", f"There is a '{p['label']}' button.", {"kind": "exists", "selector": "#cta"}),
                ("cta-text", f"The button says '{p['label']}'.", {"kind": "text", "selector": "#cta", "text": p["label"]}),
                ("cta-color", f"The button is {p['bg']}.", {"kind": "color", "selector": "#cta", "color": COLORS[p["bg"]]}),
                ("cta-place", f"The button is {'centered' if p['align'] == 'center' else 'on the ' + p['align']}.",
                 {"kind": "position", "selector": "#cta", "where": p["align"]})]

    def mutate(self, rng, p, flaw):
        if flaw == "wrong_text":
            return {**p, "label": _other(rng, LABELS, p["label"])}
        if flaw == "wrong_color":
            return {**p, "bg": _other(rng, sorted(DARK), p["bg"])}
        if flaw == "misplaced":
            return {**p, "align": _other(rng, ["left", "center", "right"], p["align"])}


class Footer(Component):
    kind, category, flaws = "footer", "layout", ("missing", "wrong_text", "wrong_color", "misplaced")

    def sample(self, rng):
        return {"text": rng.choice(FOOTERS), "bg": rng.choice(list(COLORS))}

    def html(self, p, flaw=None):
        pos = "" if flaw == "misplaced" else "position:fixed;bottom:0;left:0;right:0;"
        return (f'<footer style="{pos}background:{COLORS[p["bg"]]};color:{_fg(p["bg"])};padding:12px;text-align:center">'
                f'{p["text"]}</footer>', "", "")

    def phrase(self, p):
        return f"a {p['bg']} footer fixed at the bottom saying '{p['text']}'"

    def items(self, p):
        return [("footer-text", f"The footer says '{p['text']}'.", {"kind": "text", "selector": "footer", "text": p["text"]}),
                ("footer-bottom", "The footer is at the bottom of the page.", {"kind": "position", "selector": "footer", "where": "bottom"}),
                ("footer-color", f"The footer is {p['bg']}.", {"kind": "color", "selector": "footer", "color": COLORS[p["bg"]]})]

    def mutate(self, rng, p, flaw):
        if flaw == "wrong_text":
            return {**p, "text": _other(rng, FOOTERS, p["text"])}
        if flaw == "wrong_color":
            return {**p, "bg": _other(rng, COLORS, p["bg"])}


class Cards(Component):
    kind, category, flaws = "cards", "layout", ("missing", "too_few", "wrong_color")

    def sample(self, rng):
        n = rng.choice([2, 3, 4])
        return {"n": n, "bg": rng.choice(list(COLORS)), "words": rng.sample(WORDS, n)}

    def html(self, p, flaw=None):
        words = p["words"][:-1] if flaw == "too_few" else p["words"]
        cards = "".join(f'<div class="card" style="background:{COLORS[p["bg"]]};color:{_fg(p["bg"])};padding:24px;flex:1">'
                        f'{w}</div>' for w in words)
        return f'<div style="display:flex;gap:16px;padding:16px">{cards}</div>', "", ""

    def phrase(self, p):
        return f"a row of {p['n']} {p['bg']} cards ({', '.join(p['words'])})"

    def items(self, p):
        return [("cards-count", f"There are {p['n']} cards.", {"kind": "exists", "selector": ".card", "min": p["n"]}),
                ("cards-color", f"The cards are {p['bg']}.", {"kind": "color", "selector": ".card", "color": COLORS[p["bg"]]}),
                ("cards-last", f"A card says '{p['words'][-1]}'.", {"kind": "text", "selector": ".card", "text": p["words"][-1]})]

    def mutate(self, rng, p, flaw):
        if flaw == "wrong_color":
            return {**p, "bg": _other(rng, COLORS, p["bg"])}


class ItemList(Component):
    kind, category, flaws = "list", "layout", ("missing", "too_few", "wrong_text")

    def sample(self, rng):
        n = rng.choice([3, 4])
        return {"n": n, "words": rng.sample(WORDS, n)}

    def html(self, p, flaw=None):
        words = p["words"][:-1] if flaw == "too_few" else p["words"]
        return '<ul id="items">' + "".join(f"<li>{w}</li>" for w in words) + "</ul>", "", ""

    def phrase(self, p):
        return f"a list of {p['n']} items: {', '.join(p['words'])}"

    def items(self, p):
        return [("list-count", f"The list has {p['n']} items.", {"kind": "exists", "selector": "#items li", "min": p["n"]}),
                ("list-last", f"The list includes '{p['words'][-1]}'.", {"kind": "text", "selector": "#items", "text": p["words"][-1]})]

    def mutate(self, rng, p, flaw):
        if flaw == "wrong_text":
            return {**p, "words": p["words"][:-1] + [_other(rng, WORDS, p["words"][-1])]}


class Sidebar(Component):
    kind, category, flaws = "sidebar", "layout", ("missing", "wrong_color", "misplaced")

    def sample(self, rng):
        return {"side": rng.choice(["left", "right"]), "bg": rng.choice(list(COLORS))}

    def html(self, p, flaw=None):
        side = p["side"]
        return (f'<aside style="position:fixed;top:0;{side}:0;width:180px;height:100%;background:{COLORS[p["bg"]]};'
                f'color:{_fg(p["bg"])};padding:16px">Menu</aside>', "", "")

    def phrase(self, p):
        return f"a {p['bg']} sidebar on the {p['side']}"

    def items(self, p):
        return [("side-place", f"The sidebar is on the {p['side']}.", {"kind": "position", "selector": "aside", "where": p["side"]}),
                ("side-color", f"The sidebar is {p['bg']}.", {"kind": "color", "selector": "aside", "color": COLORS[p["bg"]]})]

    def mutate(self, rng, p, flaw):
        if flaw == "wrong_color":
            return {**p, "bg": _other(rng, COLORS, p["bg"])}
        if flaw == "misplaced":
            return {**p, "side": "left" if p["side"] == "right" else "right"}


class Reveal(Component):
    kind, category, flaws = "reveal", "interaction", ("missing", "dead", "wrong_text")

    def sample(self, rng):
        return {"label": rng.choice(REVEAL_LABELS), "message": rng.choice(MESSAGES)}

    def html(self, p, flaw=None):
        js = "" if flaw == "dead" else "document.getElementById('show').onclick=()=>{document.getElementById('msg').style.display='block'};"
        return (f'<button id="show" style="font-size:18px;margin:16px">{p["label"]}</button>'
                f'<p id="msg" style="display:none;font-size:20px;margin:16px">{p["message"]}</p>', "", js)

    def phrase(self, p):
        return f"a '{p['label']}' button that reveals the message '{p['message']}' when clicked"

    def items(self, p):
        return [("reveal-button", f"There is a '{p['label']}' button.", {"kind": "text", "selector": "#show", "text": p["label"]}),
                ("reveal-click", f"Clicking it shows '{p['message']}'.",
                 {"kind": "click", "selector": "#show", "then": {"kind": "text", "selector": "#msg", "text": p["message"]}})]

    def mutate(self, rng, p, flaw):
        if flaw == "wrong_text":
            return {**p, "message": _other(rng, MESSAGES, p["message"])}


class Counter(Component):
    kind, category, flaws = "counter", "interaction", ("missing", "dead", "wrong_step")

    def sample(self, rng):
        return {"label": rng.choice(COUNT_LABELS), "step": 1}

    def html(self, p, flaw=None):
        step = 2 if flaw == "wrong_step" else 1
        js = "" if flaw == "dead" else (f"let n=0;document.getElementById('inc').onclick=()=>{{n+={step};"
                                        f"document.getElementById('count').textContent=n}};")
        return (f'<p id="count" style="font-size:40px;margin:16px">0</p>'
                f'<button id="inc" style="font-size:18px;margin:16px">{p["label"]}</button>', "", js)

    def phrase(self, p):
        return f"a counter that starts at 0 and a '{p['label']}' button that adds one"

    def items(self, p):
        return [("count-start", "The counter shows 0.", {"kind": "text", "selector": "#count", "text": "0"}),
                ("count-click", f"Clicking '{p['label']}' makes it 1.",
                 {"kind": "click", "selector": "#inc", "then": {"kind": "text", "selector": "#count", "text": "1"}})]


class Toggle(Component):
    kind, category, flaws = "toggle", "interaction", ("missing", "dead", "wrong_color")

    def sample(self, rng):
        return {"label": rng.choice(TOGGLE_LABELS), "color": rng.choice(sorted(DARK))}

    def html(self, p, flaw=None):
        js = "" if flaw == "dead" else (f"document.getElementById('toggle').onclick=()=>{{"
                                        f"document.getElementById('panel').style.background='{COLORS[p['color']]}'}};")
        return (f'<div id="panel" style="width:240px;height:120px;margin:16px;background:#eeeeee"></div>'
                f'<button id="toggle" style="font-size:18px;margin:16px">{p["label"]}</button>', "", js)

    def phrase(self, p):
        return f"a gray panel that turns {p['color']} when the '{p['label']}' button is clicked"

    def items(self, p):
        return [("toggle-button", f"There is a '{p['label']}' button.", {"kind": "text", "selector": "#toggle", "text": p["label"]}),
                ("toggle-click", f"Clicking it turns the panel {p['color']}.",
                 {"kind": "click", "selector": "#toggle", "then": {"kind": "color", "selector": "#panel", "color": COLORS[p["color"]]}})]

    def mutate(self, rng, p, flaw):
        if flaw == "wrong_color":
            return {**p, "color": _other(rng, sorted(DARK), p["color"])}


class AnimBox(Component):
    kind, category, flaws = "anim", "time", ("missing", "static", "wrong_color")
    MOTIONS = {"slides": "from{transform:translateX(0)}to{transform:translateX(400px)}",
               "spins": "from{transform:rotate(0deg)}to{transform:rotate(360deg)}",
               "bounces": "from{transform:translateY(0)}to{transform:translateY(120px)}"}

    def sample(self, rng):
        return {"color": rng.choice(sorted(DARK)), "motion": rng.choice(list(self.MOTIONS))}

    def html(self, p, flaw=None):
        anim = "" if flaw == "static" else "animation:move 3s linear infinite;"
        css = "" if flaw == "static" else f"@keyframes move{{{self.MOTIONS[p['motion']]}}}"
        # the stage keeps a bouncing box from moving over whatever comes next
        return (f'<div style="height:240px"><div id="box" style="width:80px;height:80px;margin:24px;'
                f'background:{COLORS[p["color"]]};{anim}"></div></div>', css, "")

    def phrase(self, p):
        return f"a {p['color']} box that {p['motion'][:-1]}s continuously"

    def items(self, p):
        return [("box-color", f"The box is {p['color']}.", {"kind": "color", "selector": "#box", "color": COLORS[p["color"]]}),
                ("box-moves", f"The box {p['motion']} (it moves over time).", {"kind": "animates", "selector": "#box"})]

    def mutate(self, rng, p, flaw):
        if flaw == "wrong_color":
            return {**p, "color": _other(rng, sorted(DARK), p["color"])}


class Delayed(Component):
    kind, category, flaws = "delayed", "time", ("never", "wrong_text")

    def sample(self, rng):
        return {"message": rng.choice(MESSAGES)}

    def html(self, p, flaw=None):
        js = "" if flaw == "never" else (f"setTimeout(()=>{{document.getElementById('later').textContent="
                                         f"'{p['message']}'}},1000);")
        return '<p id="later" style="font-size:22px;margin:16px;height:28px"></p>', "", js

    def phrase(self, p):
        return f"the message '{p['message']}' appearing after one second"

    def items(self, p):
        return [("later-text", f"After a second the page shows '{p['message']}'.",
                 {"kind": "text", "selector": "#later", "text": p["message"], "at": 2})]

    def mutate(self, rng, p, flaw):
        if flaw == "wrong_text":
            return {**p, "message": _other(rng, MESSAGES, p["message"])}


class Ticker(Component):
    kind, category, flaws = "ticker", "time", ("static",)

    def sample(self, rng):
        return {"every": rng.choice([250, 500])}

    def html(self, p, flaw=None):
        js = "" if flaw == "static" else (f"let t=0;setInterval(()=>{{document.getElementById('ticks').textContent="
                                          f"++t}},{p['every']});")
        return '<p id="ticks" style="font-size:32px;margin:16px">0</p>', "", js

    def phrase(self, p):
        return f"a number that counts up every {p['every']} ms"

    def items(self, p):
        return [("ticks-start", "A number is shown.", {"kind": "exists", "selector": "#ticks"}),
                ("ticks-move", "The number keeps counting up.", {"kind": "animates", "selector": "#ticks"})]


class Progress(Component):
    kind, category, flaws = "progress", "time", ("static", "wrong_color")

    def sample(self, rng):
        return {"color": rng.choice(sorted(DARK))}

    def html(self, p, flaw=None):
        anim = "" if flaw == "static" else "animation:grow 3s linear forwards;"
        css = "" if flaw == "static" else "@keyframes grow{from{width:0}to{width:400px}}"
        return (f'<div id="track" style="width:400px;height:24px;margin:16px;background:#eeeeee">'
                f'<div id="bar" style="height:24px;width:40px;background:{COLORS[p["color"]]};{anim}"></div></div>', css, "")

    def phrase(self, p):
        return f"a {p['color']} progress bar that fills up"

    def items(self, p):
        return [("bar-color", f"The progress bar is {p['color']}.", {"kind": "color", "selector": "#bar", "color": COLORS[p["color"]], "at": 2}),
                ("bar-grows", "The progress bar grows over time.", {"kind": "animates", "selector": "#track"})]

    def mutate(self, rng, p, flaw):
        if flaw == "wrong_color":
            return {**p, "color": _other(rng, sorted(DARK), p["color"])}


COMPONENTS = {c.kind: c for c in (Header(), Title(), Button(), Footer(), Cards(), ItemList(), Sidebar(), Reveal(),
                                  Counter(), Toggle(), AnimBox(), Delayed(), Ticker(), Progress())}
BY_CATEGORY = {cat: [k for k, c in COMPONENTS.items() if c.category == cat] for cat in CATEGORIES}
BY_CATEGORY["style"] = ["title", "header", "button", "cards"]  # color/typography tasks lean on these
ORDER = list(COMPONENTS)  # page order: header first, footer/sidebar are fixed anyway
PAGE_FLAWS = ("blank", "broken", "no_code")
OPENERS = ["Create a web page with", "Build a single-page site that has", "Make an HTML page containing",
           "Design a page with"]


# ------------------------------------------------------------------------------------------- specs -> pages
def sample_spec(rng: random.Random, category: str | None = None, components=(2, 3)) -> dict:
    """A task spec: one component of the category, then others, `components` = (fewest, most) in all."""
    category = category or rng.choice(CATEGORIES)
    first = rng.choice(BY_CATEGORY[category])
    n_more = rng.choice(range(components[0] - 1, components[1]))
    rest = [k for k in COMPONENTS if k != first and not (k in ("header", "sidebar") and first in ("header", "sidebar"))]
    kinds = [first] + rng.sample(rest, n_more)
    kinds = sorted(set(kinds), key=ORDER.index)
    comps = [{"kind": k, **COMPONENTS[k].sample(rng)} for k in kinds]
    return {"category": category, "components": comps, "opener": rng.randrange(len(OPENERS))}


def _params(c: dict) -> dict:
    return {k: v for k, v in c.items() if k != "kind"}


def page_html(spec: dict, flaws: dict[int, str] | None = None) -> str:
    """The page for a spec; `flaws` maps component index -> flaw name (structural flaws here; value flaws are
    applied by `flawed_spec`)."""
    flaws = flaws or {}
    body, css, js = [], [], []
    for i, c in enumerate(spec["components"]):
        f = flaws.get(i)
        if f == "missing":
            continue
        b, s, j = COMPONENTS[c["kind"]].html(_params(c), f)
        body.append(b)
        if s:
            css.append(s)
        if j:
            js.append(j)
    head = f"<style>{''.join(css)}</style>" if css else ""
    script = f"\n<script>{''.join(js)}</script>" if js else ""
    # fixed bars must not cover the content (the critic would rightly see the covered button)
    pad = ""
    for i, c in enumerate(spec["components"]):
        if flaws.get(i) == "missing":
            continue
        if c["kind"] == "sidebar":
            pad += f"padding-{c['side']}:220px;"
        if c["kind"] == "footer" and flaws.get(i) != "misplaced":
            pad += "padding-bottom:64px;"
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">" + head + "</head>\n"
            f"<body style=\"margin:0;{pad}font-family:sans-serif\">\n" + "\n".join(body) + script + "\n</body></html>")


def flawed_spec(spec: dict, rng: random.Random, flaws: dict[int, str]) -> tuple[dict, dict[int, str]]:
    """Apply value flaws (wrong text/color/place) to a copy of the spec; return it with the structural flaws
    that page_html still has to apply."""
    comps = [dict(c) for c in spec["components"]]
    structural = {}
    for i, f in flaws.items():
        comp = COMPONENTS[comps[i]["kind"]]
        new = comp.mutate(rng, _params(comps[i]), f)
        if new is None:
            structural[i] = f
        else:
            comps[i] = {"kind": comps[i]["kind"], **new}
    return {**spec, "components": comps}, structural


def flawed_page(spec: dict, rng: random.Random, flaws: dict[int, str] | str) -> str | None:
    """A page with the given component flaws, or a page-level flaw: "blank", "broken" (truncated) or
    "no_code" (returns None: the answer has no page at all)."""
    if flaws == "no_code":
        return None
    if flaws == "blank":
        return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\n<body></body></html>"
    if flaws == "broken":
        html = page_html(spec)
        return html[: max(40, int(len(html) * rng.uniform(0.15, 0.45)))]
    s2, structural = flawed_spec(spec, rng, flaws)
    return page_html(s2, structural)


def prompt_text(spec: dict) -> str:
    phrases = [COMPONENTS[c["kind"]].phrase(_params(c)) for c in spec["components"]]
    body = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return f"{OPENERS[spec.get('opener', 0) % len(OPENERS)]} {body}."


KIND_NAMES = {"header": "header", "title": "heading", "button": "button", "footer": "footer", "cards": "cards",
              "list": "list", "sidebar": "sidebar", "reveal": "reveal button", "counter": "counter",
              "toggle": "color toggle", "anim": "animated box", "delayed": "delayed message", "ticker": "ticker",
              "progress": "progress bar"}


def plan_text(spec: dict) -> str:
    """The short plan a first attempt opens with (cheap in tokens: the prompt already has the details)."""
    return "Plan: " + ", ".join(KIND_NAMES[c["kind"]] for c in spec["components"]) + "."


def checklist(spec: dict, held_out: random.Random | None = None) -> list[dict]:
    """The items of every component. With `held_out`, one item of each component (chosen by that generator) is
    judge_only: the critic in the loop never sees it, the evaluation judge does (relook.tasks.Task.view)."""
    out = []
    for c in spec["components"]:
        items = COMPONENTS[c["kind"]].items(_params(c))
        hidden = held_out.randrange(len(items)) if held_out is not None and len(items) > 1 else -1
        for k, (iid, desc, check) in enumerate(items):
            out.append({"id": iid, "description": desc, "check": check, "weight": 1, **({"judge_only": True}
                                                                                         if k == hidden else {})})
    return out


def spec_task(spec: dict, task_id: str, held_out: bool = True):
    # its own generator, seeded by the task id: holding items out never changes which tasks are drawn
    rng = random.Random(f"held-out:{task_id}") if held_out else None
    return parse_task({"id": task_id, "prompt": prompt_text(spec), "category": spec["category"],
                       "checklist": checklist(spec, rng), "reference_html": page_html(spec),
                       "meta": {"source": "synthetic", "spec": spec}}, where=task_id)


def generate_tasks(n: int, seed: int = 0, prefix: str = "syn", categories=CATEGORIES, exclude_prompts=(),
                   components=(2, 3)):
    """n tasks, categories in rotation, reproducible from the seed; prompts are unique (and not in
    `exclude_prompts`, so an eval split never repeats a train prompt)."""
    if not 1 <= components[0] <= components[1] <= len(COMPONENTS) - 1:
        raise ValueError(f"components {components}: want 1 <= fewest <= most <= {len(COMPONENTS) - 1}")
    rng = random.Random(seed)
    seen = set(exclude_prompts)
    tasks = []
    while len(tasks) < n:
        spec = sample_spec(rng, categories[len(tasks) % len(categories)], components)
        p = prompt_text(spec)
        if p in seen:
            continue
        seen.add(p)
        tasks.append(spec_task(spec, f"{prefix}-{len(tasks):04d}"))
    return tasks


def write_splits(out_dir="data/tasks", seed: int = 0, n_train: int = 300, n_eval: int = 200, components=(2, 3)):
    train = generate_tasks(n_train, seed=seed, prefix="train", components=components)
    evals = generate_tasks(n_eval, seed=seed + 10_000, prefix="eval", exclude_prompts={t.prompt for t in train},
                           components=components)
    out = Path(out_dir)
    return save_tasks(train, out / "train.jsonl"), save_tasks(evals, out / "eval.jsonl")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/tasks")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", type=int, default=300)
    ap.add_argument("--eval", type=int, default=200)
    ap.add_argument("--components", type=int, nargs=2, default=(2, 3), metavar=("FEWEST", "MOST"))
    a = ap.parse_args(argv)
    for p in write_splits(a.out, a.seed, a.train, a.eval, tuple(a.components)):
        print(p, sum(1 for _ in open(p)))


if __name__ == "__main__":
    main()
