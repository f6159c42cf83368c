"""What a render is about: the page a model reply holds, the settings of a render and what it returns."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ERROR_KINDS = ("no_code", "timeout", "crash", "js_error", "blank", "load_failed", "render_error")


# --------------------------------------------------------------------------------------------- extraction
_FENCE = re.compile(r"```[ \t]*(html|htm|xhtml)?[ \t]*\n(.*?)```", re.IGNORECASE | re.DOTALL)
_HTML_DOC = re.compile(r"(?:<!doctype html[^>]*>\s*)?<html\b.*?</html\s*>", re.IGNORECASE | re.DOTALL)
_SVG = re.compile(r"<svg\b.*?</svg\s*>", re.IGNORECASE | re.DOTALL)


def extract_code(text: str | None) -> str | None:
    """The page in a model reply, as the ArtifactsBench harness finds it: the last ```html block, else the
    last <html>…</html>, else the last <svg>…</svg>; None when there is none (an invalid render)."""
    if not text:
        return None
    blocks = [m.group(2) for m in _FENCE.finditer(text) if m.group(1)]
    if not blocks:  # an unlabeled fence counts only if it holds a document
        blocks = [m.group(2) for m in _FENCE.finditer(text) if re.search(r"<(html|body|!doctype)", m.group(2), re.I)]
    if blocks and blocks[-1].strip():
        return blocks[-1].strip()
    for pat in (_HTML_DOC, _SVG):
        found = pat.findall(text)
        if found:
            return found[-1].strip()
    return None


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()[:16]


# --------------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class RenderConfig:
    viewport: tuple[int, int] = (1280, 720)
    timepoints: tuple[int, ...] = (0, 1000, 2000)  # virtual ms after load (+ settle_ms)
    timeout_s: float = 5.0          # the page's budget in CPU seconds (its share of the browser's CPU; budget.py)
    max_wall_s: float = 0.0         # hard wall-clock cap; past it the machine, not the page, is to blame (0 = 6x)
    cdn_mirror: bool = True         # serve common CDN libraries and fonts from the local mirror (relook.mirror)
    full_page: bool = False
    max_full_height: int = 4000     # full-page shots are clipped here
    settle_ms: int = 100            # virtual time run after load so first frames/timers have happened
    max_elements: int = 2000
    dom: bool = True                # a DOM snapshot at each time point (the checklist critic reads it; an MLLM
                                    # critic looks at pixels only, and its renders skip the snapshot's cost)
    seed: int = 0                   # Math.random seed inside the page
    extra_styles: tuple[str, ...] = ()

    def __post_init__(self):
        w, h = self.viewport
        if not (64 <= int(w) <= 4096 and 64 <= int(h) <= 4096):
            raise ValueError(f"viewport {self.viewport} out of range (64..4096 each side)")
        tps = tuple(int(t) for t in self.timepoints)
        if not tps or any(t < 0 for t in tps) or list(tps) != sorted(tps):
            raise ValueError(f"timepoints must be non-negative and increasing, got {self.timepoints}")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")
        if self.max_wall_s < 0:
            raise ValueError(f"max_wall_s must be >= 0, got {self.max_wall_s}")
        object.__setattr__(self, "viewport", (int(w), int(h)))
        object.__setattr__(self, "timepoints", tps)
        object.__setattr__(self, "extra_styles", tuple(self.extra_styles))

    @property
    def wall_cap_s(self) -> float:
        return self.max_wall_s or 6 * self.timeout_s

    def key(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


@dataclass
class RenderResult:
    valid: bool
    error: str | None = None               # one of ERROR_KINDS when invalid
    detail: str = ""                       # human-readable reason
    code: str | None = None
    screenshots: list[bytes] = field(default_factory=list)   # PNG, one per timepoint
    timepoints: list[int] = field(default_factory=list)
    dom: list[dict] = field(default_factory=list)            # one snapshot per timepoint ([] with dom=False)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)     # uncaught exceptions
    blocked_requests: list[str] = field(default_factory=list)   # refused (nothing leaves the machine)
    mirrored: list[str] = field(default_factory=list)           # "url -> package@version/file" served locally
    infra: bool = False                    # invalid through no fault of the page (busy machine, browser down)
    dialogs: list[str] = field(default_factory=list)
    popups: int = 0
    actions: list[dict] = field(default_factory=list)
    action_errors: list[str] = field(default_factory=list)
    timings: dict = field(default_factory=dict)              # load_ms, shots_ms, total_ms, cpu_s
    config: RenderConfig | None = None
    cached: bool = False
    _pixels: dict = field(default_factory=dict, repr=False, compare=False)
    _soups: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def elapsed_ms(self) -> float:
        return float(self.timings.get("total_ms", 0.0))

    @property
    def code_hash(self) -> str | None:
        return code_hash(self.code) if self.code is not None else None

    def pixels(self, i: int = 0) -> np.ndarray:
        """Screenshot i as an HxWx3 uint8 array (decoded once)."""
        if i not in self._pixels:
            from PIL import Image
            self._pixels[i] = np.asarray(Image.open(io.BytesIO(self.screenshots[i])).convert("RGB"))
        return self._pixels[i]

    def select(self, selector: str, at: int = 0, visible: bool = True) -> list[dict]:
        """Elements of snapshot `at` matching a CSS selector (soupsieve over the indexed DOM serialization),
        as the snapshot's element records (tag, id, cls, text, box, style). Raises ValueError on a bad selector."""
        if not self.dom or at >= len(self.dom):
            return []
        snap = self.dom[at]
        key = id(snap)
        if key not in self._soups:
            from bs4 import BeautifulSoup
            by_index = {e["i"]: e for e in snap["elements"]}
            self._soups[key] = (BeautifulSoup(snap.get("html", ""), "html.parser"), by_index)
        soup, by_index = self._soups[key]
        import soupsieve
        try:
            found = soupsieve.select(selector, soup)
        except Exception as e:
            raise ValueError(f"invalid CSS selector {selector!r}: {str(e).splitlines()[0]}") from None
        out = []
        for el in found:
            rec = by_index.get(int(el.get("data-rk", -1)))
            if rec is not None and (rec["visible"] or not visible):
                out.append(rec)
        return out

    def images(self):
        from PIL import Image
        return [Image.open(io.BytesIO(b)) for b in self.screenshots]

    def data_urls(self) -> list[str]:
        return ["data:image/png;base64," + base64.b64encode(b).decode() for b in self.screenshots]

    def save(self, out_dir: str | os.PathLike, stem: str = "shot") -> list[str]:
        """Writes the PNGs (and nothing else); returns their paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, png in enumerate(self.screenshots):
            p = out / f"{stem}_{i}_{self.timepoints[i] if i < len(self.timepoints) else i}ms.png"
            p.write_bytes(png)
            paths.append(str(p))
        return paths

    def summary(self) -> dict:
        """JSON-friendly summary without images or DOM."""
        return {"valid": self.valid, "error": self.error, "detail": self.detail, "infra": self.infra,
                "timepoints": self.timepoints,
                "console_errors": self.console_errors[:20], "page_errors": self.page_errors[:20],
                "blocked_requests": self.blocked_requests[:50], "mirrored": self.mirrored[:50],
                "dialogs": self.dialogs[:20],
                "popups": self.popups, "action_errors": self.action_errors,
                "elapsed_ms": round(self.elapsed_ms, 1), "timings": self.timings}


def invalid(error: str, detail: str = "", code: str | None = None, **kw) -> RenderResult:
    return RenderResult(valid=False, error=error, detail=detail, code=code, **kw)


def is_blank(png_or_rgb, min_pixels: int = 16) -> bool:
    """Nothing visible: fewer than `min_pixels` pixels differ from the page's most common color."""
    from PIL import Image
    if isinstance(png_or_rgb, bytes) and png_or_rgb[:8] == b"\x89PNG\r\n\x1a\n" and len(png_or_rgb) >= 24:
        # A one-color screenshot compresses to ~0.018 bytes a pixel even with Chromium's fast encoder; four times
        # that is content, so most pages skip the decode (a third of the Python time of a render)
        w, h = int.from_bytes(png_or_rgb[16:20], "big"), int.from_bytes(png_or_rgb[20:24], "big")
        if len(png_or_rgb) > 0.08 * w * h:
            return False
    img = Image.open(io.BytesIO(png_or_rgb)) if isinstance(png_or_rgb, bytes) else Image.fromarray(png_or_rgb)
    if img.mode != "RGB":  # Chromium's shots are RGB already: converting would copy the whole image for nothing
        img = img.convert("RGB")
    colors = img.getcolors(maxcolors=256)  # None: more than 256 colors, so not blank
    if colors is None:
        return False
    total = img.size[0] * img.size[1]
    return total - max(c for c, _ in colors) < min_pixels
