#!/usr/bin/env bash
# Makes sure `redis-server` is on PATH for the Upstash integration test
# (test/integration/upstash-cache.test.ts starts one behind the local Upstash REST bridge).
# Installs the Debian package `redis-server` with apt-get when it is missing; a quick no-op when present.
set -euo pipefail

BINARY=redis-server
PACKAGE=redis-server

if command -v "$BINARY" >/dev/null 2>&1; then
  exit 0
fi

echo "ensure-redis: $BINARY not found on PATH; installing the Debian package '$PACKAGE' with apt-get" >&2

install_with() {
  "$@" apt-get update -qq &&
    "$@" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$PACKAGE"
}

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-redis: apt-get is not available; install the '$PACKAGE' package (providing $BINARY) by hand" >&2
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  install_with || true
elif command -v sudo >/dev/null 2>&1; then
  install_with sudo || true
fi

if ! command -v "$BINARY" >/dev/null 2>&1; then
  echo "ensure-redis: could not install the Debian package '$PACKAGE' (need root or sudo, and apt sources);" \
    "install it by hand: apt-get install $PACKAGE" >&2
  exit 1
fi
echo "ensure-redis: installed $("$BINARY" --version 2>/dev/null || echo "$BINARY")" >&2
