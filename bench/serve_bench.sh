#!/usr/bin/env bash
# Serving benchmark for instcald (issue 6): throughput and p50/p99 latency of
# POST /v1/segment at 1, 2, 4 and 8 concurrent clients, for each
# workers x BLAS-threads split, with wrk (apt-get install wrk).
#
# Usage: bench/serve_bench.sh [-b BUILD_DIR] [-m MODEL] [-i IMAGE] [-d SECONDS]
#                             [-c CALIBRATION] [-s "1x2 2x1"] [-n "1 2 4 8"]
# Defaults: build, models/default.safetensors (or the tiny test model when it
# is missing), static/samples/source.png (512x256 PNG, raw body), 10 s per
# point, instcal-c, splits 1x2 2x1 1x1, clients 1 2 4 8.
# Prints a Markdown table; each point runs on a freshly started daemon
# (127.0.0.1, ephemeral port) after 2 warm-up requests.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=build MODEL=models/default.safetensors IMAGE=static/samples/source.png DUR=10
CAL=instcal-c SPLITS="1x2 2x1 1x1" CLIENTS="1 2 4 8"
while getopts b:m:i:d:c:s:n: o; do
    case $o in
    b) BUILD=$OPTARG ;; m) MODEL=$OPTARG ;; i) IMAGE=$OPTARG ;; d) DUR=$OPTARG ;;
    c) CAL=$OPTARG ;; s) SPLITS=$OPTARG ;; n) CLIENTS=$OPTARG ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
    esac
done
[ -f "$MODEL" ] || MODEL=tests/golden/fixtures/model_tiny_weights.safetensors
command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk" >&2; exit 2; }
INSTCALD=$BUILD/server/instcald
[ -x "$INSTCALD" ] || { echo "no $INSTCALD (build first)" >&2; exit 2; }
case $IMAGE in *.png) CT=image/png ;; *) CT=image/jpeg ;; esac

TMP=$(mktemp -d /tmp/serve-bench-XXXXXX)
PID=
trap '[ -n "$PID" ] && kill -KILL $PID 2>/dev/null; rm -rf "$TMP"' EXIT
cat >"$TMP/post.lua" <<LUA
local f = assert(io.open("$IMAGE", "rb"))
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "$CT"
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %.1f %.1f %d %d\n", summary.requests, summary.duration,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
LUA

echo "model: $MODEL; image: $IMAGE ($CT); calibration: $CAL; $DUR s per point;" \
    "$(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| workers x BLAS | clients | req/s | p50 ms | p99 ms | non-2xx | errors |"
echo "|---|---|---|---|---|---|---|"
for split in $SPLITS; do
    W=${split%x*} T=${split#*x}
    for c in $CLIENTS; do
        "$INSTCALD" --port 0 --backend pdl --model "$MODEL" --workers "$W" --blas-threads "$T" \
            --queue-length 32 --calibration "$CAL" --log-level info --static-dir '' \
            >"$TMP/d.log" 2>&1 &
        PID=$!
        port=
        for _ in $(seq 600); do
            port=$(sed -n 's/.*event=listening .* port=\([0-9]*\) .*/\1/p' "$TMP/d.log")
            [ -n "$port" ] && break
            sleep 0.05
        done
        [ -n "$port" ] || { cat "$TMP/d.log" >&2; exit 1; }
        URL="http://127.0.0.1:$port/v1/segment?calibration=$CAL"
        for _ in 1 2; do curl -s -o /dev/null -H "Content-Type: $CT" --data-binary @"$IMAGE" "$URL"; done
        r=$(wrk -t "$((c < 4 ? c : 4))" -c "$c" -d "${DUR}s" --timeout 30s -s "$TMP/post.lua" "$URL" |
            grep '^RESULT')
        read -r _ n us p50 p99 non2xx errs <<<"$r"
        rps=$(awk -v n="$n" -v us="$us" 'BEGIN {printf "%.1f", n / (us / 1e6)}')
        echo "| ${W}x${T} | $c | $rps | $p50 | $p99 | $non2xx | $errs |"
        kill -TERM $PID
        wait $PID || true
        PID=
    done
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
