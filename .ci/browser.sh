#!/usr/bin/env bash
# Install what tests/test_browser.py needs: Debian's Chromium (/usr/bin/chromium) and its
# driver, fonts, and Playwright for Python in .venv (it drives that Chromium; no browser
# download). Idempotent: a second run changes nothing. Needs root (CI runs as root) and
# the package registries only.
#
# Run it after .venv exists (`make setup`) and before `make test`:
#     make setup && bash .ci/browser.sh && make test
set -euo pipefail
cd "$(dirname "$0")/.."

PLAYWRIGHT_PIN="playwright==1.65.2"   # keep in step with requirements.lock
APT_PACKAGES=(chromium chromium-driver fonts-liberation fonts-dejavu-core)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo ">> browser.sh: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
test -x /usr/bin/chromium || { echo "browser.sh: /usr/bin/chromium missing after install" >&2; exit 1; }
/usr/bin/chromium --version

PY=.venv/bin/python
if [ ! -x "$PY" ]; then
  make setup
fi
if ! "$PY" -c "import playwright.sync_api" 2>/dev/null; then
  echo ">> browser.sh: installing $PLAYWRIGHT_PIN into .venv"
  "$PY" -m pip install --quiet --disable-pip-version-check "$PLAYWRIGHT_PIN"
fi
"$PY" -c "import importlib.metadata as m; print('playwright', m.version('playwright'))"

# Smoke test: Chromium starts headless with the flags the tests use.
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
timeout 60 /usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --dump-dom "data:text/html,<p>ok</p>" 2>/dev/null | grep -q "<p>ok</p>" \
  || { echo "browser.sh: headless Chromium did not start" >&2; exit 1; }
echo ">> browser.sh: headless Chromium ok"
