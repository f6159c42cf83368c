"""Colors and pixels: CSS color parsing, the palette words feedback uses, and the color a person would name for an
element in a screenshot."""
from __future__ import annotations

import re
from typing import Any

import numpy as np


_PALETTE = {  # names used in feedback (nearest match); synthetic tasks use the same words
    "white": (255, 255, 255), "black": (33, 33, 33), "gray": (158, 158, 158), "red": (229, 57, 53),
    "green": (67, 160, 71), "blue": (30, 136, 229), "navy": (26, 35, 126), "orange": (251, 140, 0),
    "purple": (142, 36, 170), "teal": (0, 137, 123), "pink": (216, 27, 96), "yellow": (253, 216, 53),
    "brown": (109, 76, 65), "light gray": (238, 238, 238), "dark gray": (84, 84, 84), "sky blue": (129, 212, 250),
}


def parse_rgba(value: Any) -> tuple[int, int, int, float] | None:
    """#rgb, #rrggbb, #rrggbbaa, rgb()/rgba() (also space syntax), CSS color names, 'transparent'."""
    if isinstance(value, (tuple, list)) and len(value) in (3, 4):
        return (int(value[0]), int(value[1]), int(value[2]), float(value[3]) if len(value) == 4 else 1.0)
    if not isinstance(value, str):
        return None
    v = value.strip().lower()
    if v == "transparent":
        return (0, 0, 0, 0.0)
    m = re.fullmatch(r"#([0-9a-f]{3,8})", v)
    if m:
        h = m.group(1)
        if len(h) in (3, 4):
            h = "".join(c * 2 for c in h)
        if len(h) not in (6, 8):
            return None
        a = int(h[6:8], 16) / 255 if len(h) == 8 else 1.0
        return (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), a)
    m = re.fullmatch(r"rgba?\(\s*([\d.]+%?)[\s,]+([\d.]+%?)[\s,]+([\d.]+%?)(?:\s*[,/]\s*([\d.]+%?))?\s*\)", v)
    if m:
        def ch(x):
            return round(float(x[:-1]) * 2.55) if x.endswith("%") else round(float(x))
        a = m.group(4)
        alpha = 1.0 if a is None else (float(a[:-1]) / 100 if a.endswith("%") else float(a))
        return (ch(m.group(1)), ch(m.group(2)), ch(m.group(3)), alpha)
    from matplotlib.colors import CSS4_COLORS  # the CSS named colors, without a hand-written table
    if v in CSS4_COLORS:
        return parse_rgba(CSS4_COLORS[v])
    return None


def parse_color(value: Any) -> tuple[int, int, int] | None:
    c = parse_rgba(value)
    return None if c is None else c[:3]


def color_hex(rgb) -> str:
    return "#%02x%02x%02x" % tuple(int(x) for x in rgb[:3])


def color_name(rgb) -> str:
    """Nearest of a small palette, for feedback a person (or a small model) can act on."""
    r = np.array(rgb[:3], dtype=float)
    return min(_PALETTE, key=lambda k: float(((np.array(_PALETTE[k]) - r) ** 2).sum()))


def color_distance(a, b) -> float:
    return float(np.sqrt(((np.array(a[:3], dtype=float) - np.array(b[:3], dtype=float)) ** 2).sum()))


def describe_color(rgb) -> str:
    return f"{color_hex(rgb)} ({color_name(rgb)})"


def region_color(pixels: np.ndarray, box, style: dict | None, own_text: str) -> tuple[int, int, int] | None:
    """The color a person would name for an element, from the screenshot pixels inside its box: the dominant
    color — or, for text on a transparent background, the dominant color of the text itself."""
    x, y, w, h = (int(round(v)) for v in box)
    H, W = pixels.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    crop = pixels[y0:y1, x0:x1].reshape(-1, 3).astype(np.int32)
    q = crop >> 3  # 32 levels per channel: tolerant to anti-aliasing and gradients
    keys = (q[:, 0] << 10) | (q[:, 1] << 5) | q[:, 2]
    mode = np.bincount(keys).argmax()
    bg = crop[keys == mode].mean(axis=0)
    st = style or {}
    bg_css = parse_rgba(st.get("background-color", "")) or (0, 0, 0, 0.0)
    transparent = bg_css[3] == 0 and st.get("background-image", "none") in ("none", "")
    if transparent and own_text:
        fg = np.abs(crop - bg).max(axis=1) > 48
        if fg.sum() >= 8:
            fk = keys[fg]
            fmode = np.bincount(fk).argmax()
            return tuple(int(v) for v in crop[fg][fk == fmode].mean(axis=0))
    return tuple(int(v) for v in bg)
