#!/usr/bin/env bash
# Makes sure /usr/bin/chromium exists for the headless report test (test/e2e/report-chromium.test.ts).
# Installs the Debian package `chromium` with apt when it is missing; does nothing when it is present.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
PACKAGE=chromium

if [ -x "$CHROMIUM" ]; then
  exit 0
fi

echo "ensure-chromium: $CHROMIUM not found; installing the Debian package '$PACKAGE' with apt-get" >&2

install_with() {
  "$@" apt-get update -qq &&
    "$@" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$PACKAGE"
}

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: apt-get is not available; install the '$PACKAGE' package (providing $CHROMIUM) by hand" >&2
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  install_with || true
elif command -v sudo >/dev/null 2>&1; then
  install_with sudo || true
fi

if [ ! -x "$CHROMIUM" ]; then
  echo "ensure-chromium: could not install the Debian package '$PACKAGE' (need root or sudo, and apt sources);" \
    "install it by hand: apt-get install $PACKAGE" >&2
  exit 1
fi
echo "ensure-chromium: installed $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")" >&2
