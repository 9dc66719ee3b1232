#!/usr/bin/env bash
# Hostile-input integration tests. Starts instcald (pdl backend, tiny model)
# on ephemeral loopback ports and runs, against it:
#   hostile.py  bad images, labels, multipart, headers, slow and idle clients
#               (small limits: max_connections 32, connection_timeout_s 3)
#   framing.py  ambiguous framing, refusals that must be answered, half-close,
#               keep-alive and pipelining (same daemon)
#   inputs.py   decompression bombs, labels at their bit depth, label_segments
#               limits, scratch memory after a large image (same daemon; its
#               worker_memory_keep is 32M so that a 4 MP image shows the shrink)
#   floods.py   connection floods, on a second daemon with the default
#               connection limits (header_timeout_s 2 to keep it short)
# then checks that each drains and exits 0 on SIGTERM with a clean log.
# Usage: tests/hostile/run.sh [path/to/instcald]        (about 2 minutes)
# HOSTILE_SLOWDOWN=3 scales the latency bounds (sanitizer builds).
# HOSTILE_SUITES="inputs" runs only those suites (default: all four).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${1:-$ROOT/build/server/instcald}
MODEL=$ROOT/tests/golden/fixtures/model_tiny_weights.safetensors
T=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
export HOSTILE_MAXCONN=${HOSTILE_MAXCONN:-32} HOSTILE_TIMEOUT_S=${HOSTILE_TIMEOUT_S:-3}

# start LOG FLAGS...: starts the daemon, sets PID, PORT and ADMIN_PORT.
start() {
    local log=$1
    shift
    "$BIN" --port 0 --admin_port 0 --backend pdl --model "$MODEL" --workers 1 --queue_length 4 \
        --tent off --max_upload_bytes 4M --static_dir "" --log_level info "$@" >"$log" 2>&1 &
    PID=$!
    local line=
    for _ in $(seq 100); do
        line=$(grep -o 'event=listening.*' "$log" 2>/dev/null || true)
        [ -n "$line" ] && break
        kill -0 "$PID" 2>/dev/null || { cat "$log"; exit 1; }
        sleep 0.1
    done
    [ -n "$line" ] || { echo "hostile: daemon did not start"; cat "$log"; exit 1; }
    PORT=$(echo "$line" | grep -o ' port=[0-9]*' | head -1 | cut -d= -f2)
    ADMIN_PORT=$(echo "$line" | grep -o 'admin_port=[0-9]*' | cut -d= -f2)
}

# stop LOG: SIGTERM, the exit status and errors in the log; sets rc on failure.
stop() {
    kill -TERM "$PID"
    for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$PID" 2>/dev/null; then echo "hostile: daemon did not exit on SIGTERM"; rc=1; else
        wait "$PID" || { echo "hostile: daemon exit status $?"; rc=1; }
    fi
    PID=
    if grep -q 'level=error\|mhd_panic\|AddressSanitizer\|runtime error' "$1"; then
        echo "hostile: errors in the daemon log:"
        grep 'level=error\|mhd_panic\|AddressSanitizer\|runtime error' "$1" | head
        rc=1
    fi
}

SUITES=" ${HOSTILE_SUITES:-hostile framing inputs floods} "
want() { [[ $SUITES == *" $1 "* ]]; }
rc=0
start "$T/log" --max_pixels 4000000 --max_connections "$HOSTILE_MAXCONN" \
    --connection_timeout_s "$HOSTILE_TIMEOUT_S" --worker_memory_keep 32M
! want hostile || timeout 300 python3 "$ROOT/tests/hostile/hostile.py" "$PORT" "$PID" || rc=$?
for s in framing inputs; do
    ! want $s || H_PORT=$PORT H_PID=$PID H_ADMIN_PORT=$ADMIN_PORT timeout 300 \
        python3 "$ROOT/tests/hostile/$s.py" || rc=1
done
stop "$T/log"

if want floods; then
    start "$T/floods.log" --header_timeout_s 2
    H_PORT=$PORT H_PID=$PID H_ADMIN_PORT=$ADMIN_PORT H_HEADER_TIMEOUT_S=2 \
        timeout 300 python3 "$ROOT/tests/hostile/floods.py" || rc=1
    stop "$T/floods.log"
fi
exit $rc
