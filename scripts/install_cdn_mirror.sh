#!/usr/bin/env bash
# Installs the offline CDN mirror: the front-end libraries pinned in relook/cdn/package-lock.json, from the npm
# registry, into $RELOOK_CDN_DIR (default .cache/relook/cdn), where relook/mirror.py serves them to rendered pages.
# A stamp (lockfile, this script, the manifest's libraries and prune list) makes a second run a no-op.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
DEST=$(realpath -m "${RELOOK_CDN_DIR:-$REPO/.cache/relook/cdn}")  # $RELOOK_CDN_DIR relative to where we are called
cd "$REPO"
SRC=relook/cdn
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "install_cdn_mirror: node and npm are needed (Node 18+). Debian/Ubuntu: sudo apt-get install -y nodejs npm" >&2
  exit 1
fi
mkdir -p "$DEST"
MANIFEST="$PWD/$SRC/manifest.json"
PRUNE=$(node -e 'console.log(require(process.argv[1]).prune.join("\n"))' "$MANIFEST")
KEEP=$(node -e 'console.log(JSON.stringify(require(process.argv[1]).libraries))' "$MANIFEST")
STAMP=$({ cat "$SRC/package-lock.json" scripts/install_cdn_mirror.sh; echo "$PRUNE"; echo "$KEEP"; } \
  | sha256sum | cut -d' ' -f1)
if [ -d "$DEST/node_modules" ] && [ "$(cat "$DEST/.installed" 2>/dev/null)" = "$STAMP" ]; then
  echo "cdn mirror: up to date ($DEST)"; exit 0
fi
rm -f "$DEST/.installed"
cp "$SRC/package.json" "$SRC/package-lock.json" "$DEST/"
# no install scripts: nothing here is built, only served; optional deps are native Node add-ons
(cd "$DEST" && npm ci --ignore-scripts --no-audit --no-fund --omit=optional --loglevel=error)
# Only the libraries are served, and their CDN builds are self-contained: their dependencies go. So does every
# X.js / X.css with an X.min.js / X.min.css beside it (relook/mirror.py serves the twin), and the manifest's prune
# globs (source maps, type declarations, sources): two thirds of what npm installs.
node -e '
  const fs = require("fs"), path = require("path"), [manifest, nm] = process.argv.slice(1);
  const keep = new Set(Object.values(require(manifest).libraries).flatMap(Object.values));
  const twins = dir => {
    const names = new Set(fs.readdirSync(dir));
    for (const n of names) {
      const p = path.join(dir, n), m = n.match(/^(.+?)\.(js|mjs|cjs|css)$/);
      if (fs.lstatSync(p).isDirectory()) twins(p);
      else if (m && !m[1].endsWith(".min") && names.has(`${m[1]}.min.${m[2]}`)) fs.rmSync(p);
    }
  };
  for (const e of fs.readdirSync(nm)) {
    if (e.startsWith(".")) continue;
    const names = e.startsWith("@") ? fs.readdirSync(path.join(nm, e)).map(s => e + "/" + s) : [e];
    for (const n of names) {
      const dir = path.join(nm, n);
      if (!keep.has(n)) { fs.rmSync(dir, {recursive: true, force: true}); continue; }
      fs.rmSync(path.join(dir, "node_modules"), {recursive: true, force: true});
      twins(dir);
    }
  }' "$MANIFEST" "$DEST/node_modules"
(
  cd "$DEST/node_modules"
  shopt -s globstar nullglob extglob
  while IFS= read -r pat; do
    [[ -z $pat || $pat == /* || $pat == *..* ]] && continue
    for f in $pat; do rm -rf -- "$f"; done
  done <<< "$PRUNE"
)
echo "$STAMP" > "$DEST/.installed"
echo "cdn mirror: $(du -sh --apparent-size "$DEST/node_modules" | cut -f1) in $DEST"
