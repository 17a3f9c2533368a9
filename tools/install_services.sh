#!/usr/bin/env bash
# The system packages some tests need besides the Python environment: PostgreSQL's server
# (the multi-worker tuning test starts a throwaway one on 127.0.0.1). From Debian's
# packages; needs root. Skipped when already there; tests that need a missing package skip
# with the reason.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "[services] not root or no apt-get: PostgreSQL tests will be skipped" >&2
    exit 0
fi
echo "[services] installing PostgreSQL from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends postgresql >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends postgresql >/dev/null; } \
    || echo "[services] could not install PostgreSQL: its tests will be skipped" >&2
