#!/usr/bin/env bash
# Bounded soak: starts instcald (pdl backend, tiny model) on a loopback port and
# runs soak.py against it: REQUESTS mixed good and bad requests from CLIENTS
# threads with RSS sampled, then SIGTERM must drain and exit 0.
# Usage: tests/soak/run.sh [path/to/instcald] [REQUESTS] [CLIENTS]
#   CI variant: tests/soak/run.sh build/server/instcald 1500      (~30-60 s)
#   long run:   tests/soak/run.sh build/server/instcald 50000 4
# SOAK_VALGRIND=1 runs the daemon under valgrind --leak-check=full (slow:
# use ~300 requests) and fails on any definite or indirect leak.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${1:-$ROOT/build/server/instcald}
N=${2:-5000}
C=${3:-4}
MODEL=$ROOT/tests/golden/fixtures/model_tiny_weights.safetensors
T=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
PRE=()
if [ "${SOAK_VALGRIND:-0}" = 1 ]; then
    PRE=(valgrind --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
         --error-exitcode=99 --log-file="$T/valgrind")
fi
"${PRE[@]}" "$BIN" --port 0 --backend pdl --model "$MODEL" --workers 2 --queue_length 16 --tent off \
    --max_upload_bytes 4M --max_pixels 4000000 --connection_timeout_s 10 --static_dir "" \
    --log_level warn --deadline_ms 60000 >"$T/log" 2>&1 &
PID=$!
# Port: the listening socket of PID (log level warn prints no listening line).
PORT=
for _ in $(seq 300); do
    PORT=$(ss -Hltnp 2>/dev/null | grep "pid=$PID," | grep -o '127.0.0.1:[0-9]*' | head -1 | cut -d: -f2 || true)
    [ -n "$PORT" ] && break
    kill -0 "$PID" 2>/dev/null || { cat "$T/log"; exit 1; }
    sleep 0.1
done
[ -n "$PORT" ] || { echo "soak: daemon did not start"; cat "$T/log"; exit 1; }
rc=0
python3 "$ROOT/tests/soak/soak.py" "$PORT" "$PID" "$N" "$C" || rc=$?
kill -TERM "$PID"
for _ in $(seq 600); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
st=0
wait "$PID" || st=$?
PID=
if [ $st -ne 0 ]; then echo "soak: daemon exit status $st"; rc=1; fi
if [ -f "$T/valgrind" ]; then
    grep -E 'definitely lost|indirectly lost|ERROR SUMMARY' "$T/valgrind"
fi
exit $rc
