#!/usr/bin/env bash
# Sets everything up and starts the service on the shipped default model
# (models/default.safetensors); open http://127.0.0.1:8080/ for the demo page.
# Usage: ./run.sh [instcald options...]   e.g. ./run.sh --port 9000
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/scripts/setup.sh"
ensure_packages "${BUILD_PACKAGES[@]}"
build_dir build
cd "$ROOT"
exec build/server/instcald --config conf/instcald.conf --backend pdl --model models/default.safetensors "$@"
