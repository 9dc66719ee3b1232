#!/usr/bin/env bash
# Builds the libFuzzer targets into build-fuzz/ (clang, ASan + UBSan).
# Usage: tests/fuzz/build.sh [BUILD_DIR]
# The engine and the daemon library are built by meson with
# -fsanitize=fuzzer-no-link (coverage, no main); each target is then linked
# with -fsanitize=fuzzer. Needs clang and libclang-rt-14-dev (Debian 12).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${1:-$ROOT/build-fuzz}
CC=${FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
    echo "fuzz/build: installing clang libclang-rt-14-dev" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev >/dev/null
fi
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
if [ ! -f "$B/build.ninja" ]; then
    CC=$CC meson setup "$B" "$ROOT" -Dnative=false -Dtests=false -Dbuildtype=debugoptimized \
        -Db_sanitize=address,undefined -Db_lundef=false \
        -Dc_args="-fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined -gline-tables-only" >/dev/null
fi
nice -n "${FUZZ_NICE:-15}" ninja -C "$B" core/libinstcal.a server/libinstcald.a >/dev/null
LIBS="$(pkg-config --libs libmicrohttpd jansson libpng libjpeg openblas) -lm -lpthread"
INC="-I$ROOT/core -I$ROOT/server"
for t in image safetensors label http request oip; do
    src=$ROOT/tests/fuzz/fuzz_$t.c out=$B/fuzz_$t
    if [ ! -x "$out" ] || [ "$src" -nt "$out" ] || [ "$B/core/libinstcal.a" -nt "$out" ] ||
       [ "$B/server/libinstcald.a" -nt "$out" ]; then
        # shellcheck disable=SC2086
        nice -n "${FUZZ_NICE:-15}" "$CC" -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer $SAN $INC \
            -o "$out" "$src" "$B/server/libinstcald.a" "$B/core/libinstcal.a" $LIBS
    fi
done
echo "fuzz/build: targets in $B: fuzz_image fuzz_safetensors fuzz_label fuzz_http fuzz_request fuzz_oip"
