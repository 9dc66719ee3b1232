#!/usr/bin/env bash
# Regression: SIGTERM must always stop an idle instcald (drain, exit 0).
# Starts the daemon ROUNDS times, lets it idle, sends SIGTERM and allows
# 10 s to exit. Found hanging: main() polls a blocking signalfd and the
# self-pipe; when poll reports the signalfd readable but the kernel then
# delivers the process-directed SIGTERM to an OpenBLAS thread (which does not
# block it, so the handler writes to the pipe instead), read(signalfd) blocks
# forever and the pipe byte is never read. Fix: SFD_NONBLOCK on the signalfd.
# Usage: tests/hostile/sigterm.sh [path/to/instcald] [ROUNDS]
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${1:-$ROOT/build/server/instcald}
ROUNDS=${2:-5}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
hung=0
for i in $(seq "$ROUNDS"); do
    # Alternate backends: the hang was seen with both.
    if [ $((i % 2)) = 0 ]; then be=(--backend test); else
        be=(--backend pdl --model "$ROOT/tests/golden/fixtures/model_tiny_weights.safetensors" --tent off); fi
    "$BIN" --port 0 "${be[@]}" --workers 1 --static_dir "" >"$T/log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do grep -q event=listening "$T/log" && break; sleep 0.05; done
    sleep 1
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        hung=$((hung + 1))
        echo "sigterm: round $i: still running 10 s after SIGTERM (main thread in $(cat /proc/$pid/wchan 2>/dev/null))"
        kill -KILL "$pid"
    fi
    wait "$pid" 2>/dev/null
done
echo "sigterm: $ROUNDS rounds, $hung hung"
echo "$((ROUNDS - hung)) passed, $hung failed"
[ "$hung" = 0 ]
