#!/usr/bin/env bash
# Shared set-up for ./run.sh and ./test.sh: installs the Debian packages the
# build needs (only those missing), configures build/ once and compiles.
# Idempotent: on a machine that is already set up it only runs ninja.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Packages needed to build and run the service.
BUILD_PACKAGES=(gcc pkg-config meson ninja-build libmicrohttpd-dev libopenblas-dev
    libjpeg62-turbo-dev libjansson-dev libpng-dev check libsubunit-dev)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ensure_packages PKG...: apt-get installs whichever of PKG are not installed.
ensure_packages() {
    local missing=()
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$p")
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "setup: installing ${missing[*]}" >&2
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
}

# build_dir DIR [meson options...]: configures DIR once, then compiles it.
build_dir() {
    local dir=$1
    shift
    if [ ! -f "$ROOT/$dir/build.ninja" ]; then
        meson setup "$ROOT/$dir" "$ROOT" "$@" >/dev/null
    fi
    ninja -C "$ROOT/$dir" >/dev/null
}
