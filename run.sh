#!/usr/bin/env bash
# Sets everything up and starts the service on the shipped default model.
# Usage: ./run.sh [instcald options...]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/scripts/setup.sh"
ensure_packages "${BUILD_PACKAGES[@]}"
build_dir build
cd "$ROOT"
if [ -x build/server/instcald ]; then
    exec build/server/instcald --config conf/instcald.conf "$@"
fi
# Until the daemon lands (issue 6) show what the engine does on this machine.
exec build/core/cli/instcal bench ops --reps 3 "$@"
