#!/usr/bin/env bash
# Sets everything up and runs every test suite: the normal build, then the
# unit suites again under AddressSanitizer + UndefinedBehaviorSanitizer.
# Usage: ./test.sh
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/scripts/setup.sh"
ensure_packages "${BUILD_PACKAGES[@]}" python3 python3-numpy curl jq prometheus
cd "$ROOT"

echo "== build (release) and all suites"
build_dir build
meson test -C build --print-errorlogs --num-processes 2

echo "== browser test (demo page in headless Chromium)"
"$ROOT/tests/browser/run.sh"

echo "== fuzz (short), hostile inputs, soak, deployment files and scale-out"
ensure_packages clang libclang-rt-14-dev nginx systemd
tests/fuzz/run.sh 15
tests/hostile/run.sh build/server/instcald
tests/hostile/sigterm.sh build/server/instcald 5
tests/soak/run.sh build/server/instcald 2000 4
tests/deploy/run.sh build/server/instcald 3000

echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
build_dir build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dnative=false
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-asan --print-errorlogs --num-processes 2 --no-suite slow
# The hostile image and label inputs against the sanitized daemon (~20 s); a
# small quarantine lets freed scratch memory leave, as the memory case checks.
ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=8 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    HOSTILE_SLOWDOWN=3 HOSTILE_SUITES=inputs tests/hostile/run.sh build-asan/server/instcald

echo "== all suites passed"
