#!/usr/bin/env bash
# Sets everything up and starts the service on the shipped default model
# (models/default.safetensors); open http://127.0.0.1:8080/ for the demo page.
# Usage: ./run.sh [instcald options...]   e.g. ./run.sh --port 9000
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/scripts/setup.sh"
ensure_packages "${BUILD_PACKAGES[@]}"
build_dir build
cd "$ROOT"
model=models/default.safetensors
if [ ! -f "$model" ]; then
    # Until the trained default model is committed (issue 5), serve the tiny
    # random-weight test model so that the service and page can be tried.
    echo "run.sh: $model is not there yet; serving the tiny random-weight test model" >&2
    model=tests/golden/fixtures/model_tiny_weights.safetensors
fi
exec build/server/instcald --config conf/instcald.conf --backend pdl --model "$model" "$@"
