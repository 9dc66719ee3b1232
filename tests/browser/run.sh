#!/usr/bin/env bash
# The demo page's browser test: installs what it needs (Debian's chromium,
# nodejs/npm, the npm packages of tests/browser; all only when missing) and
# runs demo.test.js against instcald. Never downloads a browser: playwright-core
# drives /usr/bin/chromium.
#
# Usage: tests/browser/run.sh
# Environment: INSTCALD (daemon binary; default build/server/instcald, built
# with the shared setup when missing), INSTCAL_MODEL (weights; default
# models/default.safetensors if present, else the tiny test model),
# ARTIFACTS (screenshots; default tests/artifacts).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../../scripts/setup.sh"

ensure_packages chromium
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    ensure_packages nodejs npm
fi
if [ -z "${INSTCALD:-}" ] && [ ! -x "$ROOT/build/server/instcald" ]; then
    ensure_packages "${BUILD_PACKAGES[@]}"
    build_dir build
fi

cd "$HERE"
# npm ci only when the lockfile changed since the last install.
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp.src" 2>/dev/null; then
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json "$stamp.src"
fi
exec node demo.test.js
