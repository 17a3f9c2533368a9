#!/usr/bin/env bash
# The system packages some tests need besides the Python environment, from Debian's
# packages (root needed): PostgreSQL's server (the multi-worker tuning test starts a
# throwaway one on 127.0.0.1) and Chromium (the demo test screenshots its HTML report).
# Packages already there are skipped; a test whose package is missing skips with the reason.
set -euo pipefail
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "[services] not root or no apt-get: tests needing ${missing[*]} will skip" >&2
    exit 0
fi
echo "[services] installing ${missing[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
install() { apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
install || { apt-get update -q >/dev/null && install; } \
    || echo "[services] could not install ${missing[*]}: their tests will skip" >&2
