#!/usr/bin/env bash
# Hostile-input integration tests: starts instcald (pdl backend, tiny model)
# on an ephemeral loopback port with small limits, runs hostile.py against it,
# then checks that it drains and exits 0 on SIGTERM.
# Usage: tests/hostile/run.sh [path/to/instcald]        (about 1 minute)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${1:-$ROOT/build/server/instcald}
MODEL=$ROOT/tests/golden/fixtures/model_tiny_weights.safetensors
T=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
export HOSTILE_MAXCONN=${HOSTILE_MAXCONN:-32} HOSTILE_TIMEOUT_S=${HOSTILE_TIMEOUT_S:-3}
"$BIN" --port 0 --backend pdl --model "$MODEL" --workers 1 --queue_length 4 --tent off \
    --max_upload_bytes 4M --max_pixels 4000000 --max_connections "$HOSTILE_MAXCONN" \
    --connection_timeout_s "$HOSTILE_TIMEOUT_S" --static_dir "" --log_level info \
    >"$T/log" 2>&1 &
PID=$!
PORT=
for _ in $(seq 100); do
    PORT=$(grep -o 'event=listening.* port=[0-9]*' "$T/log" 2>/dev/null | grep -o 'port=[0-9]*' | tail -1 | cut -d= -f2 || true)
    [ -n "$PORT" ] && break
    kill -0 "$PID" 2>/dev/null || { cat "$T/log"; exit 1; }
    sleep 0.1
done
[ -n "$PORT" ] || { echo "hostile: daemon did not start"; cat "$T/log"; exit 1; }
rc=0
timeout 300 python3 "$ROOT/tests/hostile/hostile.py" "$PORT" "$PID" || rc=$?
kill -TERM "$PID"
for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PID" 2>/dev/null; then echo "hostile: daemon did not exit on SIGTERM"; rc=1; else
    wait "$PID" || { echo "hostile: daemon exit status $?"; rc=1; }
fi
PID=
if grep -q 'level=error\|mhd_panic\|AddressSanitizer\|runtime error' "$T/log"; then
    echo "hostile: errors in the daemon log:"; grep 'level=error\|mhd_panic\|AddressSanitizer\|runtime error' "$T/log" | head; rc=1
fi
exit $rc
