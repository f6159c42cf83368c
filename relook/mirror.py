"""Offline CDN mirror: the URL of a front-end library on a public CDN (jsdelivr, unpkg, cdnjs, Tailwind's Play CDN,
Google Fonts, ...) -> a file of that library installed from npm by scripts/install_cdn_mirror.sh, so that pages which
load libraries render in the sandbox as they do with the network on. The URL rules are data (relook/cdn/manifest.json).

    hit = default_mirror().resolve("https://cdn.jsdelivr.net/npm/chart.js@4")
    hit.source  # 'chart.js@4.6.1/dist/chart.umd.min.js'; None from resolve = not mirrored, the renderer refuses it

Version choice: the exact version if installed, else one with the same major (same minor for 0.x), else the newest
installed version that has the file. A request for X.js is served X.min.js where only that is installed (jsdelivr
minifies on the fly, and the install drops X.js beside X.min.js), and X.min.js is served X.js where only that exists.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from relook.config import ROOT

MANIFEST = Path(__file__).resolve().parent / "cdn" / "manifest.json"
TYPES = {".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
         ".cjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".json": "application/json",
         ".map": "application/json", ".wasm": "application/wasm", ".woff2": "font/woff2", ".woff": "font/woff",
         ".ttf": "font/ttf", ".otf": "font/otf", ".eot": "application/vnd.ms-fontobject", ".svg": "image/svg+xml",
         ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp",
         ".ico": "image/x-icon", ".html": "text/html; charset=utf-8", ".txt": "text/plain; charset=utf-8",
         ".xml": "application/xml", ".gltf": "model/gltf+json", ".glb": "model/gltf-binary"}
# module scripts, fonts and fetch() from the page's origin are CORS requests
CORS = {"access-control-allow-origin": "*", "cross-origin-resource-policy": "cross-origin"}
KINDS = {"npm": "_npm", "cdnjs": "_cdnjs", "package": "_package", "tailwind-play": "_tailwind_play",
         "google-fonts-css": "_google_fonts_css", "google-fonts-file": "_google_fonts_file"}
# what fonts.googleapis.com adds to the CSS of its icon fonts, so that <span class="material-icons">home</span> works
ICON_CSS = (".{cls} {{\n  font-family: '{family}';\n  font-weight: normal;\n  font-style: normal;\n"
            "  font-size: 24px;\n  line-height: 1;\n  letter-spacing: normal;\n  text-transform: none;\n"
            "  display: inline-block;\n  white-space: nowrap;\n  word-wrap: normal;\n  direction: ltr;\n"
            "  -webkit-font-feature-settings: 'liga';\n  font-feature-settings: 'liga';\n"
            "  -webkit-font-smoothing: antialiased;\n}}\n")


@dataclass(frozen=True)
class Hit:
    url: str
    source: str             # what was served: "three@0.160.1/build/three.module.js", or "google-fonts-css"
    path: Path | None       # the file served, or None when the body was generated
    body: bytes | None
    content_type: str
    headers: dict = field(default_factory=dict)  # content-type + CORS

    def read(self) -> bytes:
        return self.body if self.body is not None else self.path.read_bytes()


def _nums(v: str) -> tuple:
    m = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", v)
    return tuple(int(x) for x in m.groups() if x is not None) if m else ()


def _twins(rel: str) -> tuple:
    """rel, then its minified / unminified twin, then rel.js (specifiers without an extension)."""
    unmin = re.sub(r"\.min\.(js|mjs|cjs|css)$", r".\1", rel)
    mini = rel if unmin != rel else re.sub(r"\.(js|mjs|cjs|css)$", r".min.\1", rel)
    return tuple(dict.fromkeys((rel, unmin, mini, rel + ".js")))


class Mirror:
    def __init__(self, root: str | Path | None = None, manifest: str | Path = MANIFEST):
        self.root = Path(root or os.environ.get("RELOOK_CDN_DIR") or ROOT / ".cache/relook/cdn")
        self.nm = self.root / "node_modules"
        m = json.loads(Path(manifest).read_text())
        self.libs = m["libraries"]
        self.aliases, self.rewrites = m["aliases"], m["version_rewrites"]
        self.cdnjs_names, self.cdnjs_dirs = m["cdnjs"]["names"], m["cdnjs"]["dirs"]
        self.rules: dict[str, list] = {}
        for r in m["rules"]:
            self.rules.setdefault(r["host"], []).append({**r, "re": re.compile(r["re"])})
        self._json: dict[Path, dict] = {}
        self._real: dict[Path, str] = {}
        self._cached = lru_cache(maxsize=8192)(self._resolve)  # per instance: called for every request of every page

    @property
    def available(self) -> bool:
        return self.nm.is_dir()

    def resolve(self, url: str) -> Hit | None:
        """The mirrored response for url, or None: not mirrored (the renderer refuses it). Never raises."""
        return self._cached(url) if self.available else None

    def _resolve(self, url: str) -> Hit | None:
        try:
            u = urlsplit(url)
            if u.scheme not in ("http", "https"):
                return None
            path, query = unquote(u.path) or "/", parse_qs(u.query, keep_blank_values=True)
            for rule in self.rules.get(u.hostname or "", ()):
                if m := rule["re"].match(path):
                    g = {k: v or "" for k, v in m.groupdict().items()}
                    return getattr(self, KINDS[rule["kind"]])(url, rule, g, query)
        except (ValueError, OSError):  # malformed URLs, names the file system refuses
            return None
        return None

    # --- files of installed packages

    def _file(self, base: Path, rel: str, dirs=("",)) -> Path | None:
        segs = rel.split("/")
        if any(s in (".", "..") or "\\" in s or "\0" in s for s in segs):
            return None
        rel = "/".join(s for s in segs if s)
        if not rel:
            return None
        if base not in self._real:
            self._real[base] = os.path.realpath(base) + os.sep
        for r in _twins(rel):  # the name asked for in every search dir before any twin
            for d in dirs:
                p = base / (d + r)
                if p.is_file() and os.path.realpath(p).startswith(self._real[base]):  # no symlink out of the package
                    return p
        return None

    def _read_json(self, f: Path) -> dict:
        if f not in self._json:
            self._json[f] = json.loads(f.read_text()) if f.is_file() else {}
        return self._json[f]

    def _default(self, base: Path, fields) -> Path | None:
        for f in fields:
            v = self._read_json(base / "package.json").get(f)
            if isinstance(v, str) and (p := self._file(base, v.removeprefix("./"))):
                return p
        return self._file(base, "index.js")

    def _candidates(self, names: list, spec: str) -> list:
        """(version, folder, name) in the order they are tried, per the version rule in the module docstring."""
        cands = sorted(((_nums(v), v, d, n) for n in names for v, d in self.libs.get(n, {}).items()), reverse=True)
        spec = spec.strip().lstrip("v^~=")
        for n in names:
            if n in self.rewrites:
                spec = re.sub(self.rewrites[n][0], self.rewrites[n][1], spec)
        want = _nums(spec)
        if not want:  # none, "latest", "next", a range we do not parse
            return [c[1:] for c in cands]
        k = len(want) if len(want) < 3 else 2 if want[0] == 0 else 1
        close = [c for c in cands if c[1] == spec] + [c for c in cands if c[0][:k] == want[:k] and c[1] != spec]
        return [c[1:] for c in (close or cands)]

    def _serve(self, url, names, spec, rel, dirs=("",), fields=()) -> Hit | None:
        names = [self.aliases.get(n, n) for n in names]
        for ver, folder, name in self._candidates(names, spec):
            base = self.nm / folder
            p = self._file(base, rel, dirs) if rel else self._default(base, fields)
            if p:
                return self._hit(url, f"{name}@{ver}/{p.relative_to(base).as_posix()}", p, None,
                                 TYPES.get(p.suffix.lower(), "application/octet-stream"))
        return None

    @staticmethod
    def _hit(url, source, path, body, ct) -> Hit:
        return Hit(url, source, path, body, ct, {"content-type": ct, **CORS})

    # --- rule kinds (manifest "kind")

    def _npm(self, url, rule, g, q):
        if "module" in q:  # unpkg's ?module rewrites bare imports: not a file anybody installed
            return None
        m = re.match(r"((?:@[^/@]+/)?[^/@]+)(?:@([^/]*))?(/.*)?$", g["spec"])
        if not m or m[3] == "/":  # a trailing slash asks for a directory listing
            return None
        return self._serve(url, [m[1]], m[2] or "", (m[3] or "").lstrip("/"), fields=rule["fields"])

    def _cdnjs(self, url, rule, g, q):
        name = g["name"].lower()
        return self._serve(url, self.cdnjs_names.get(name, [name]), g["ver"], g["path"], dirs=self.cdnjs_dirs)

    def _package(self, url, rule, g, q):
        return self._serve(url, [rule["package"]], g.get("ver") or rule.get("ver", ""),
                           rule.get("path", "{path}").format(**g), dirs=rule.get("dirs", [""]))

    def _tailwind_play(self, url, rule, g, q):
        asked = {p.strip() for v in q.get("plugins", []) for p in v.split(",")} & rule["plugins"].keys()
        f = rule["all_plugins"] if len(asked) > 1 else rule["plugins"][asked.pop()] if asked else rule["path"]
        pkg = rule["package"]  # the package keeps earlier Play CDN releases in folders named by version
        return (g["ver"] and self._serve(url, [pkg], "", f"{g['ver']}/{f}")) or self._serve(url, [pkg], "", f)

    def _google_fonts_file(self, url, rule, g, q):
        return self._serve(url, ["@fontsource/" + g["id"]], "", "files/" + g["path"])

    def _google_fonts_css(self, url, rule, g, q):
        css2, css = urlsplit(url).path.endswith("css2"), []
        display = next((d for d in q.get("display", []) if re.fullmatch(r"[a-z]+", d)), "")
        for fam in (f for v in q.get("family", []) for f in v.split("|")):  # css (v1) separates families with |
            name, _, axes = fam.partition(":")
            fid = re.sub(r"\s+", "-", name.strip().lower())
            folder = next(iter(self.libs.get("@fontsource/" + fid, {}).values()), None)
            if not folder or not (meta := self._read_json(self.nm / folder / "metadata.json")):
                continue  # unknown families are left out, as if Google had no such font
            faces = set()
            for lo, hi, italic in (_css2_axes if css2 else _css1_axes)(axes):
                ws = ([w for w in meta["weights"] if lo <= w <= hi]
                      or [min(meta["weights"], key=lambda w: (abs(w - lo), w))])  # the nearest weight it has
                style = "italic" if italic and "italic" in meta["styles"] else "normal"
                faces |= {(style, w) for w in ws}
            for style, w in sorted(faces, key=lambda f: (f[0] != "normal", f[1])):
                file = f"{fid}-latin-{w}-{style}.woff2"
                if (self.nm / folder / "files" / file).is_file():
                    css.append(f"/* latin */\n@font-face {{\n  font-family: '{meta['family']}';\n"
                               f"  font-style: {style};\n  font-weight: {w};\n"
                               + (f"  font-display: {display};\n" if display else "") +
                               f"  src: url(https://fonts.gstatic.com/s/{fid}/{file}) format('woff2');\n}}\n")
            if fid.startswith("material-"):
                css.append(ICON_CSS.format(cls=fid, family=meta["family"]))
        return self._hit(url, "google-fonts-css", None, "".join(css).encode(), TYPES[".css"])


def _css1_axes(spec: str) -> list:
    """css?family=Roboto:300,400italic,700i,bold -> [(lo, hi, italic)]"""
    out = []
    for t in (spec.split(":")[0] or "400").lower().split(","):
        if m := re.fullmatch(r"(\d*)([a-z]*)", t.strip()):
            w = int(m[1]) if m[1] else 700 if m[2].startswith("b") else 400
            out.append((w, w, m[2] in ("i", "bi") or m[2].endswith("italic")))
    return out


def _css2_axes(spec: str) -> list:
    """css2?family=Inter:ital,wght@0,400;1,700 / wght@100..900 -> [(lo, hi, italic)]"""
    if "@" not in spec:
        return [(400, 400, False)]
    names, _, tuples = spec.partition("@")
    out = []
    for t in tuples.split(";"):
        ax = dict(zip(names.split(","), t.split(",")))
        lo, _, hi = ax.get("wght", "400").partition("..")
        lo, hi = (_nums(lo) or (400,))[0], (_nums(hi or lo) or (400,))[0]
        out.append((lo, hi, ax.get("ital", "0").strip().startswith("1")))
    return out


@lru_cache(maxsize=None)
def _mirror(root: str) -> Mirror:
    return Mirror(root)


def default_mirror() -> Mirror:
    """The mirror at $RELOOK_CDN_DIR, else <repo>/.cache/relook/cdn; one instance (and URL cache) per root."""
    return _mirror(str(os.environ.get("RELOOK_CDN_DIR") or ROOT / ".cache/relook/cdn"))


def library_table(manifest: str | Path = MANIFEST) -> str:
    """The mirrored libraries and versions as a Markdown table (for the README)."""
    libs = json.loads(Path(manifest).read_text())["libraries"]
    fonts = [n.split("/", 1)[1] for n in libs if n.startswith("@fontsource/")]
    rows = [f"| {n} | {', '.join(vs)} |" for n, vs in libs.items() if not n.startswith("@fontsource/")]
    return "\n".join(["| library | versions |", "|---|---|", *rows,
                      f"| Google Fonts ({len(fonts)} families, from @fontsource) | {', '.join(fonts)} |"])
