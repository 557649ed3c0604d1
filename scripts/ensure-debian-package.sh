#!/usr/bin/env bash
# Usage: ensure-debian-package.sh <binary> <package>
# Makes sure <binary> (a path, or a command on PATH) exists, installing the Debian <package> with
# apt-get when it is missing (as root, or through sudo). Quick no-op when it is present. The tests
# need chromium (the report test) and redis-server (the Upstash bridge).
set -euo pipefail
BINARY=${1:?usage: ensure-debian-package.sh <binary> <package>}
PACKAGE=${2:?usage: ensure-debian-package.sh <binary> <package>}

present() { command -v "$BINARY" >/dev/null 2>&1 || [ -x "$BINARY" ]; }
present && exit 0

echo "ensure-debian-package: $BINARY not found; installing the Debian package '$PACKAGE' with apt-get" >&2
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-debian-package: apt-get is not available; install the '$PACKAGE' package (providing $BINARY) by hand" >&2
  exit 1
fi
install_with() {
  "$@" apt-get update -qq && "$@" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$PACKAGE"
}
if [ "$(id -u)" -eq 0 ]; then
  install_with || true
elif command -v sudo >/dev/null 2>&1; then
  install_with sudo || true
fi
if ! present; then
  echo "ensure-debian-package: could not install the Debian package '$PACKAGE' (need root or sudo, and apt sources);" \
    "install it by hand: apt-get install $PACKAGE" >&2
  exit 1
fi
echo "ensure-debian-package: installed $PACKAGE" >&2
