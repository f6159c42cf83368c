#!/usr/bin/env bash
# Makes sure relook can find a Chromium, installing Debian's when none is there, and the fonts real pages need:
# CJK and colour emoji (without them a critic judges boxes the page never showed).
# Order relook uses: $RELOOK_CHROMIUM, Playwright's bundled browser, chromium-headless-shell, chromium.
# `playwright install` is never needed (it cannot download on offline machines).
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1; }
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
fonts() {
  if have fc-list && fc-list | grep -i "Noto Sans CJK" >/dev/null && fc-list | grep -i "Noto Color Emoji" >/dev/null; then
    echo "fonts: CJK and colour emoji present"; return 0
  fi
  if have apt-get; then
    echo "installing Debian's fonts-noto-cjk + fonts-noto-color-emoji (apt-get)..."
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends fontconfig fonts-noto-cjk fonts-noto-color-emoji \
        fonts-dejavu-core fonts-liberation >/dev/null
    fc-list | grep -i "Noto Sans CJK" >/dev/null || { echo "CJK font install failed" >&2; exit 1; }
    echo "fonts: installed"; return 0
  fi
  echo "warning: no CJK / colour-emoji font and no apt-get: install Noto Sans CJK and Noto Color Emoji, or CJK text" \
       "and emoji render as boxes" >&2
}
fonts
if [ -n "${RELOOK_CHROMIUM:-}" ]; then
  [ -x "$RELOOK_CHROMIUM" ] && { echo "chromium: $RELOOK_CHROMIUM (RELOOK_CHROMIUM)"; exit 0; }
  echo "RELOOK_CHROMIUM=$RELOOK_CHROMIUM is not an executable" >&2; exit 1
fi
if ls "${PLAYWRIGHT_BROWSERS_PATH:-$HOME/.cache/ms-playwright}"/chromium*/ >/dev/null 2>&1; then
  echo "chromium: Playwright's bundled browser"; exit 0
fi
if have chromium-headless-shell && have chromium; then
  echo "chromium: $(command -v chromium-headless-shell)"; exit 0
fi
if have apt-get; then
  echo "installing Debian's chromium + chromium-headless-shell (apt-get)..."
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # the headless shell renders ~2x faster; fonts keep text rendering identical across machines
  $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-headless-shell fonts-dejavu-core \
      fonts-liberation >/dev/null \
    || $SUDO apt-get install -y -qq chromium >/dev/null
  have chromium-headless-shell || have chromium || { echo "chromium install failed" >&2; exit 1; }
  echo "chromium: $(command -v chromium-headless-shell || command -v chromium)"; exit 0
fi
if have chromium || have chromium-browser || have google-chrome; then
  echo "chromium: system browser"; exit 0
fi
echo "No Chromium found and no apt-get to install one: install Chromium and set RELOOK_CHROMIUM=/path/to/chrome" >&2
exit 1
