"""The offline CDN mirror (relook/mirror.py): the CDN URLs LLM-written pages use resolve to installed files of the
right library, version and content type; everything else (unknown packages, on-the-fly ESM bundlers, runtimes that
download more, traversal attempts) is refused. No browser needed; most tests need `bash scripts/install_cdn_mirror.sh`
(part of `make setup`)."""
import json
import os
import re
from pathlib import Path

import pytest

from relook.mirror import MANIFEST, Mirror, default_mirror, library_table

ROOT = Path(__file__).resolve().parents[1]
REAL_PAGES = Path(__file__).resolve().parents[2] / "shared/data/real-pages"
MIRROR = default_mirror()
needs_mirror = pytest.mark.skipif(not MIRROR.available, reason=f"no CDN mirror at {MIRROR.root}: run "
                                  "`bash scripts/install_cdn_mirror.sh` (make setup) to install it")
LIBS = json.loads(MANIFEST.read_text())["libraries"]
JS, CSS, WOFF2 = "text/javascript; charset=utf-8", "text/css; charset=utf-8", "font/woff2"

# (url, what is served: "library@version/path" or a prefix of it, content type)
RESOLVES = [
    ("https://cdn.jsdelivr.net/npm/chart.js", "chart.js@4.6.1/dist/chart.umd.min.js", JS),
    ("https://cdn.jsdelivr.net/npm/chart.js@4.4.0/dist/chart.umd.min.js", "chart.js@4.6.1/", JS),
    ("https://cdn.jsdelivr.net/npm/chart.js@2.9.4/dist/Chart.min.js", "chart.js@2.9.4/dist/Chart.min.js", JS),
    ("https://cdnjs.cloudflare.com/ajax/libs/Chart.js/3.7.1/chart.min.js", "chart.js@3.9.1/dist/chart.min.js", JS),
    ("https://cdnjs.cloudflare.com/ajax/libs/three.js/r128/three.min.js", "three@0.128.0/build/three.min.js", JS),
    ("https://cdnjs.cloudflare.com/ajax/libs/three.js/r128/examples/js/controls/OrbitControls.js",
     "three@0.128.0/examples/js/controls/OrbitControls.js", JS),
    ("https://cdn.jsdelivr.net/npm/three@0.128.0/examples/js/loaders/GLTFLoader.js", "three@0.128.0/", JS),
    ("https://unpkg.com/three@0.160.0/build/three.module.js", "three@0.160.1/build/three.module", JS),
    ("https://unpkg.com/three@0.160.0/examples/jsm/controls/OrbitControls.js",
     "three@0.160.1/examples/jsm/controls/OrbitControls.js", JS),
    ("https://cdn.jsdelivr.net/npm/three@latest/examples/jsm/loaders/GLTFLoader.js", "three@0.187.0/", JS),
    ("https://ga.jspm.io/npm:three@0.160.0/build/three.module.js", "three@0.160.1/build/three.module", JS),
    ("https://cdn.tailwindcss.com", "tailwindcss-cdn@3.4.10/tailwindcss.js", JS),
    ("https://cdn.tailwindcss.com/3.4.1", "tailwindcss-cdn@3.4.10/3.4.1/tailwindcss.js", JS),
    ("https://cdn.tailwindcss.com?plugins=forms,typography,aspect-ratio,container-queries",
     "tailwindcss-cdn@3.4.10/tailwindcss-with-all-plugins.js", JS),
    ("https://cdn.tailwindcss.com/?plugins=typography", "tailwindcss-cdn@3.4.10/tailwindcss-with-typography.js", JS),
    ("https://cdn.jsdelivr.net/npm/@tailwindcss/browser@4", "@tailwindcss/browser@4.3.4/dist/index.global.js", JS),
    ("https://cdn.jsdelivr.net/npm/tailwindcss@2.2.19/dist/tailwind.min.css",
     "tailwindcss@2.2.19/dist/tailwind.min.css", CSS),
    ("https://unpkg.com/react@18/umd/react.development.js", "react@18.3.1/umd/react.development.js", JS),
    ("https://unpkg.com/react-dom@18.2.0/umd/react-dom.production.min.js", "react-dom@18.3.1/umd/", JS),
    ("https://unpkg.com/@babel/standalone/babel.min.js", "@babel/standalone@7.29.13/babel.min.js", JS),
    ("https://d3js.org/d3.v7.min.js", "d3@7.9.2/dist/d3.min.js", JS),
    ("https://cdn.jsdelivr.net/npm/d3@7", "d3@7.9.2/dist/d3.min.js", JS),
    ("https://code.jquery.com/jquery-3.6.0.min.js", "jquery@3.8.0/dist/jquery.min.js", JS),
    ("https://cdn.jsdelivr.net/npm/bootstrap@5.3.0/dist/css/bootstrap.min.css", "bootstrap@5.3.9/", CSS),
    ("https://cdn.jsdelivr.net/npm/bootstrap@5.3.0/dist/js/bootstrap.bundle.min.js", "bootstrap@5.3.9/", JS),
    ("https://stackpath.bootstrapcdn.com/bootstrap/4.5.2/css/bootstrap.min.css",
     "bootstrap@4.6.2/dist/css/bootstrap.min.css", CSS),
    ("https://cdnjs.cloudflare.com/ajax/libs/gsap/3.12.2/ScrollTrigger.min.js", "gsap@3.15.0/dist/ScrollTrigger", JS),
    ("https://cdnjs.cloudflare.com/ajax/libs/animejs/3.2.1/anime.min.js", "animejs@3.2.2/lib/anime.min.js", JS),
    ("https://unpkg.com/alpinejs@3.x.x/dist/cdn.min.js", "alpinejs@3.17.5/dist/cdn.min.js", JS),
    ("https://unpkg.com/lucide@latest", "lucide@1.65.0/dist/umd/lucide.min.js", JS),
    ("https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.4.0/css/all.min.css",
     "@fortawesome/fontawesome-free@6.7.2/css/all.min.css", CSS),
    ("https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.4.0/webfonts/fa-solid-900.woff2",  # its ../webfonts/
     "@fortawesome/fontawesome-free@6.7.2/webfonts/fa-solid-900.woff2", WOFF2),
    ("https://cdnjs.cloudflare.com/ajax/libs/font-awesome/5.15.3/css/all.min.css",
     "@fortawesome/fontawesome-free@5.15.4/", CSS),
    ("https://cdnjs.cloudflare.com/ajax/libs/font-awesome/4.7.0/css/font-awesome.min.css",
     "font-awesome@4.7.0/css/font-awesome.min.css", CSS),
    ("https://cdnjs.cloudflare.com/ajax/libs/font-awesome/4.7.0/fonts/fontawesome-webfont.woff2?v=4.7.0",
     "font-awesome@4.7.0/fonts/fontawesome-webfont.woff2", WOFF2),
    ("https://kit.fontawesome.com/a076d05399.js", "@fortawesome/fontawesome-free@6.7.2/js/all.min.js", JS),
    ("https://cdnjs.cloudflare.com/ajax/libs/p5.js/1.4.0/p5.js", "p5@1.11.13/lib/p5.", JS),
    ("https://cdn.jsdelivr.net/npm/echarts@5.4.3/dist/echarts.min.js", "echarts@5.6.0/dist/echarts.min.js", JS),
    ("https://unpkg.com/vue@3/dist/vue.global.prod.js", "vue@3.5.45/dist/vue.global.prod.js", JS),
    ("https://cdn.jsdelivr.net/npm/vue@2.6.14/dist/vue.js", "vue@2.7.16/dist/vue.", JS),
    ("https://cdn.jsdelivr.net/npm/marked/marked.min.js", "marked@15.0.12/marked.min.js", JS),
    ("https://cdnjs.cloudflare.com/ajax/libs/highlight.js/11.9.0/styles/github-dark.min.css",
     "@highlightjs/cdn-assets@11.12.0/styles/github-dark.min.css", CSS),
    ("https://cdn.jsdelivr.net/gh/highlightjs/cdn-release@11.9.0/build/highlight.min.js",
     "@highlightjs/cdn-assets@11.12.0/highlight.min.js", JS),
    ("https://cdn.jsdelivr.net/npm/katex@0.16.9/dist/fonts/KaTeX_Main-Regular.woff2", "katex@0.16.47/dist/fonts/",
     WOFF2),
    ("https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js", "mathjax@3.2.2/es5/tex-mml-chtml.js", JS),
    ("https://unpkg.com/leaflet@1.9.4/dist/images/marker-icon.png", "leaflet@1.9.4/dist/images/marker-icon.png",
     "image/png"),
    ("https://cdnjs.cloudflare.com/ajax/libs/moment.js/2.29.4/moment.min.js", "moment@2.31.0/min/moment.min.js", JS),
    ("https://cdnjs.cloudflare.com/ajax/libs/matter-js/0.19.0/matter.min.js", "matter-js@0.20.0/build/matter.min.js",
     JS),
    ("https://cdn.jsdelivr.net/npm/pixi.js@7.x/dist/pixi.min.js", "pixi.js@7.4.2/dist/pixi.min.js", JS),
    ("https://cdn.jsdelivr.net/npm/phaser@3.60.0/dist/phaser.js", "phaser@3.90.0/dist/phaser.min.js", JS),
    ("https://cdnjs.cloudflare.com/ajax/libs/tone/14.8.49/Tone.js", "tone@15.5.44/build/Tone.js", JS),
    ("https://cdnjs.cloudflare.com/ajax/libs/sql.js/1.11.0/sql-wasm.wasm", "sql.js@1.17.0/dist/sql-wasm.wasm",
     "application/wasm"),
    ("https://cdn.plot.ly/plotly-2.27.0.min.js", "plotly.js-dist-min@4.1.2/plotly.min.js", JS),
    ("https://cdn.jsdelivr.net/npm/mermaid@10/dist/mermaid.esm.min.mjs", "mermaid@11.17.2/dist/mermaid.esm.min.mjs",
     JS),
    ("https://cdn.jsdelivr.net/npm/@fontsource/inter@5/400.css", "@fontsource/inter@5.3.0/400.css", CSS),
    ("https://cdn.jsdelivr.net/npm/unicode-emoji-json@0.7.0/data-by-emoji.json", "unicode-emoji-json@0.9.0/",
     "application/json"),
]

REFUSED = [
    "https://cdn.jsdelivr.net/npm/not-a-package-relook@1.0.0/index.js",
    "https://unpkg.com/left-pad-relook-nope",
    "https://cdn.jsdelivr.net/npm/three@0.160.0/+esm",         # jsdelivr bundles ESM on the fly
    "https://cdn.jsdelivr.net/npm/chart.js@4/auto/+esm",
    "https://unpkg.com/three@0.160.0/build/three.module.js?module",  # unpkg rewrites bare imports
    "https://esm.sh/react@18", "https://esm.run/marked", "https://cdn.skypack.dev/three",
    "https://cdn.jsdelivr.net/pyodide/v0.27.2/full/pyodide.js",
    "https://cdn.jsdelivr.net/npm/@huggingface/transformers@3.0.2",
    "https://cdn.jsdelivr.net/npm/chart.js@4/dist/no-such-file.js",
    "https://cdn.jsdelivr.net/npm/three@0.160.0/",              # a directory listing
    "https://cdn.jsdelivr.net/npm/three@0.160.0/build",
    "https://cdn.jsdelivr.net/npm/three@0.160.0/examples/js/controls/OrbitControls.js",  # gone in r148, as on jsdelivr
    "https://fonts.googleapis.com", "https://fonts.gstatic.com",  # preconnect hints
    "https://fonts.gstatic.com/s/roboto/v30/KFOmCnqEu92Fr1Mu4mxK.woff2",  # a real Google file name
    "https://example.com/chart.js", "https://cdn.example.org/npm/chart.js",
    "ftp://cdn.jsdelivr.net/npm/chart.js", "data:text/javascript,alert(1)", "not a url", "", "https://[::1",
]

TRAVERSAL = [
    "https://cdn.jsdelivr.net/npm/three@0.160.0/../../package.json",
    "https://cdn.jsdelivr.net/npm/three@0.160.0/build/../../../../../../etc/passwd",
    "https://unpkg.com/three@0.160.0/%2e%2e/%2e%2e/package.json",
    "https://unpkg.com/three@0.160.0/..%2f..%2f..%2f.installed",
    "https://unpkg.com/three@0.160.0/build/..%5c..%5cpackage.json",
    "https://cdn.jsdelivr.net/npm/..%2f..%2fpackage.json",
    "https://cdn.jsdelivr.net/npm/%2e%2e/package.json",
    "https://cdnjs.cloudflare.com/ajax/libs/three.js/r128/../../../../etc/passwd",
    "https://cdnjs.cloudflare.com/ajax/libs/three.js/r128/%2e%2e/%2e%2e/%2e%2e/package-lock.json",
    "https://cdnjs.cloudflare.com/ajax/libs/..%2f..%2f/r128/package.json",
    "https://fonts.gstatic.com/s/inter/..%2f..%2fpackage.json",
    "https://fonts.gstatic.com/s/..%2f..%2f/x.woff2",
    "https://cdn.tailwindcss.com/..%2f..%2fpackage.json",
    "https://cdn.tailwindcss.com/3.4.1/../../../package.json",
    "https://use.fontawesome.com/releases/v6.4.0/../../../../package.json",
    "https://cdn.jsdelivr.net/gh/highlightjs/cdn-release@11/build/../../../package.json",
]


@needs_mirror
@pytest.mark.parametrize("url,source,ctype", RESOLVES)
def test_llm_cdn_urls_resolve(url, source, ctype):
    hit = MIRROR.resolve(url)
    assert hit is not None, url
    assert hit.source.startswith(source), (url, hit.source)
    assert hit.content_type == ctype and hit.headers["content-type"] == ctype
    assert hit.headers["access-control-allow-origin"] == "*"
    assert hit.path.is_file() and hit.read() and hit.url == url
    name, ver, rel = re.fullmatch(r"(@?[^@]+)@([^/]+)/(.+)", hit.source).groups()
    folder = LIBS[name][ver]  # the version served is one the manifest lists, read from its folder
    assert hit.path == MIRROR.nm / folder / rel
    assert json.loads((MIRROR.nm / folder / "package.json").read_text())["version"] == ver


@needs_mirror
@pytest.mark.parametrize("url", REFUSED + TRAVERSAL)
def test_refused(url):
    assert MIRROR.resolve(url) is None


@needs_mirror
def test_odd_urls_never_raise():
    odd = ["https://cdn.jsdelivr.net/npm/" + "a/" * 3000, "https://unpkg.com/" + "x" * 5000 + ".js",
           "https://unpkg.com/three@%00/build/three.js", "https://unpkg.com/three@0.160.0/build/three\x00.js",
           "https://unpkg.com/%ff%fe/x.js", "https://unpkg.com/three@0.160.0/%", "https://unpkg.com/@/x",
           "https://unpkg.com/@scope", "https://unpkg.com/three@@@/x", "https://cdnjs.cloudflare.com/ajax/libs/x/y/",
           "https://fonts.googleapis.com/css2?family=", "https://fonts.googleapis.com/css2?family=Inter:wght@abc;;,,",
           "https://fonts.googleapis.com/css?family=Roboto:%ff,&family=|||", "https://cdn.tailwindcss.com?plugins=",
           "https://cdn.jsdelivr.net/npm/three@0.160.0/build/three.module.js#frag?x=1", "http://unpkg.com:99999/x",
           "https://user:pw@unpkg.com/three", "https://UNPKG.COM/three@0.160.0/build/three.module.js", "\x00", "//x"]
    for url in odd:
        hit = MIRROR.resolve(url)
        assert hit is None or hit.path is None or hit.path.is_relative_to(MIRROR.nm), url


def test_symlinks_do_not_escape_the_package(tmp_path):
    """A link inside a package that points out of it is refused; a plain file beside it is served."""
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    dist = tmp_path / "mirror/node_modules/jquery/dist"
    dist.mkdir(parents=True)
    (dist / "jquery.min.js").write_text("window.jQuery = 1")
    os.symlink(secret, dist / "jquery.slim.min.js")
    os.symlink(tmp_path, dist / "up")
    m = Mirror(tmp_path / "mirror")
    assert m.resolve("https://code.jquery.com/jquery-3.7.1.min.js").read() == b"window.jQuery = 1"
    assert m.resolve("https://code.jquery.com/jquery-3.7.1.slim.min.js") is None
    assert m.resolve("https://unpkg.com/jquery@3/dist/up/secret.txt") is None


def test_not_installed_resolves_nothing(tmp_path):
    m = Mirror(tmp_path / "absent")
    assert not m.available and m.resolve("https://cdn.jsdelivr.net/npm/chart.js") is None


@needs_mirror
def test_resolve_is_cached_per_url():
    url = "https://cdn.jsdelivr.net/npm/chart.js@4"
    assert MIRROR.resolve(url) is MIRROR.resolve(url) and default_mirror() is MIRROR


def _faces(css: str) -> list:
    return re.findall(r"font-family: '([^']+)';\n  font-style: (\w+);\n  font-weight: (\d+);\n(?:.*\n)?"
                      r"  src: url\((https://fonts\.gstatic\.com/[^)]+)\)", css)


@needs_mirror
@pytest.mark.parametrize("url,want", [
    ("https://fonts.googleapis.com/css?family=Roboto:300,400,700|Open+Sans",
     {("Roboto", "normal", "300"), ("Roboto", "normal", "400"), ("Roboto", "normal", "700"),
      ("Open Sans", "normal", "400")}),
    ("https://fonts.googleapis.com/css?family=Lato:400,700italic&family=Pacifico",
     {("Lato", "normal", "400"), ("Lato", "italic", "700"), ("Pacifico", "normal", "400")}),
    ("https://fonts.googleapis.com/css2?family=Inter:wght@400;600&family=EB+Garamond:ital,wght@0,400;1,400"
     "&display=swap",
     {("Inter", "normal", "400"), ("Inter", "normal", "600"), ("EB Garamond", "normal", "400"),
      ("EB Garamond", "italic", "400")}),
    # nearest weight (Bebas Neue has 400 only), italic a font lacks -> normal, families Google lacks left out
    ("https://fonts.googleapis.com/css2?family=Bebas+Neue:ital,wght@1,700&family=No+Such+Font+Relook:wght@400",
     {("Bebas Neue", "normal", "400")}),
    ("https://fonts.googleapis.com/css2?family=Space+Grotesk:wght@300..500", {("Space Grotesk", "normal", w) for w in
                                                                            ("300", "400", "500")}),
    ("https://fonts.googleapis.com/css2?family=Press+Start+2P&family=Source+Sans+3:wght@600",
     {("Press Start 2P", "normal", "400"), ("Source Sans 3", "normal", "600")}),
])
def test_google_fonts_css_and_its_font_files(url, want):
    hit = MIRROR.resolve(url)
    assert hit.source == "google-fonts-css" and hit.content_type == CSS and hit.path is None
    assert hit.headers["access-control-allow-origin"] == "*"
    faces = _faces(hit.body.decode())
    assert {f[:3] for f in faces} == want
    for *_, font_url in faces:  # the font URLs inside the CSS are served too
        font = MIRROR.resolve(font_url)
        assert font.content_type == WOFF2 and font.source.startswith("@fontsource/")
        assert font.read()[:4] == b"wOF2"
    assert ("font-display: swap" in hit.body.decode()) == ("display=swap" in url)


@needs_mirror
def test_material_icons_get_their_class():
    css = MIRROR.resolve("https://fonts.googleapis.com/icon?family=Material+Icons").body.decode()
    assert ".material-icons {" in css and "'liga'" in css and _faces(css)[0][0] == "Material Icons"


def test_manifest_matches_package_json():
    deps = json.loads((ROOT / "relook/cdn/package.json").read_text())["dependencies"]
    lock = json.loads((ROOT / "relook/cdn/package-lock.json").read_text())["packages"][""]["dependencies"]
    assert deps == lock
    listed = {d: (n, v) for n, vs in LIBS.items() for v, d in vs.items()}
    assert listed == {d: tuple(s[4:].rsplit("@", 1)) if s.startswith("npm:") else (d, s) for d, s in deps.items()}
    table = library_table()
    assert "| three | 0.187.0, 0.160.1, 0.128.0 |" in table and "inter" in table


@needs_mirror
def test_installed_versions_match_the_manifest():
    for name, versions in LIBS.items():
        for ver, folder in versions.items():
            pj = MIRROR.nm / folder / "package.json"
            assert pj.is_file(), f"{folder} not installed: rerun scripts/install_cdn_mirror.sh"
            assert json.loads(pj.read_text())["version"] == ver, folder


# Real pages (simonw/tools): every CDN URL they load resolves, except these, each refused on purpose.
EXPECTED_REFUSALS = {
    "/pyodide/": "Python runtime, downloads its packages",
    "cdn.skypack.dev/": "on-the-fly ESM bundler", "esm.run/": "on-the-fly ESM bundler",
    "/+esm": "jsdelivr's on-the-fly ESM bundle",
    "/gh/copy/v86@": "x86 emulator BIOS images (GitHub, not npm)", "/npm/v86@": "x86 emulator, loads disk images",
    "/npm/@ffmpeg/core@": "30 MB wasm runtime", "/npm/@huggingface/transformers@": "downloads models",
    "/npm/quickjs-emscripten@": "loads per-variant wasm packages", "/npm/prompts-js": "not on the npm registry",
    "fonts.googleapis.com#": "preconnect hint", "fonts.gstatic.com#": "preconnect hint",
}
CDN_URL = re.compile(r"https?://[a-zA-Z0-9.-]+(?:/[^\s\"'`<>)\\]*)?")


@needs_mirror
@pytest.mark.skipif(not (REAL_PAGES / "simonw_tools").is_dir(), reason=f"no real pages at {REAL_PAGES}")
def test_real_pages_cdn_urls():
    hosts = {r["host"] for r in json.loads(MANIFEST.read_text())["rules"]} | {"esm.sh", "esm.run", "cdn.skypack.dev"}
    pages = (REAL_PAGES / "simonw_tools").glob("*.html")
    urls = {u for f in pages for u in CDN_URL.findall(f.read_text(errors="replace"))
            if "${" not in u and u.split("/")[2] in hosts}  # ${...}: built by script, not a URL as written
    assert len(urls) > 80
    wrong = []
    for url in sorted(urls):
        refused = any(k in url + "#" for k in EXPECTED_REFUSALS)
        hit = MIRROR.resolve(url)
        empty_css = hit and hit.source == "google-fonts-css" and "@font-face" not in hit.body.decode()
        if refused != (hit is None) or empty_css:
            wrong.append((url, hit and hit.source))
    assert not wrong, wrong
