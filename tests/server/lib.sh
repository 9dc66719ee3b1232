# Helpers shared by the daemon's integration scripts (sourced, not run).
# The script sets INSTCALD and DAEMON_ARGS (backend-specific flags) and calls
# lib_init PREFIX; then start / expect / expect_error / stop / metric /
# wait_inflight / wait_jobs are available, and FAILS counts failures.

lib_init() { # lib_init PREFIX: temp dir, cleanup on exit
    TMP=$(mktemp -d "/tmp/$1-XXXXXX")
    PIDS=()
    FAILS=0
    trap lib_cleanup EXIT
}

lib_cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}

fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }

# start NAME ARGS...: starts a daemon with DAEMON_ARGS and ARGS, logging to
# $TMP/NAME.log; sets PID and URL once it logs the port it listens on.
start() {
    local name=$1
    shift
    "$INSTCALD" --port 0 --log-level info "${DAEMON_ARGS[@]}" "$@" >"$TMP/$name.log" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    local port=""
    for _ in $(seq 200); do
        port=$(sed -n 's/.*event=listening .* port=\([0-9]*\) .*/\1/p' "$TMP/$name.log")
        [ -n "$port" ] && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.05
    done
    [ -n "$port" ] || { cat "$TMP/$name.log"; echo "FAIL: $name did not start"; exit 1; }
    URL="http://127.0.0.1:$port"
}

# expect STATUS DESCRIPTION CURL-ARGS...: checks the status code; the body
# is left in $TMP/body and headers in $TMP/headers.
expect() {
    local want=$1 what=$2
    shift 2
    local got
    got=$(curl -s -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' "$@")
    if [ "$got" = "$want" ]; then ok "$what -> $got"; else fail "$what: want $want, got $got: $(head -c 300 "$TMP/body")"; fi
}

# expect_error STATUS CODE DESCRIPTION CURL-ARGS...: also the JSON error code and message.
expect_error() {
    local want=$1 code=$2 what=$3
    shift 3
    expect "$want" "$what" "$@"
    local got
    got=$(jq -r '.error.code' <"$TMP/body" 2>/dev/null)
    [ "$got" = "$code" ] || fail "$what: error code '$got', want '$code'"
    jq -e '.error.message | length > 0' <"$TMP/body" >/dev/null 2>&1 || fail "$what: no error message"
}

stop() { # stop PID: SIGTERM, expect exit status 0
    kill -TERM "$1"
    wait "$1"
    local rc=$?
    [ "$rc" = 0 ] && ok "exit status 0 after SIGTERM" || fail "exit status $rc after SIGTERM"
}

metric() { # metric URL 'series': prints the value
    curl -s "$1/metrics" | awk -v s="$2" '$1 == s {print $2}'
}

# wait_inflight N: waits (up to 20 s) until the daemon holds N accepted
# segmentation requests, so that timing-sensitive checks do not depend on
# how fast background curls start on a loaded machine.
wait_inflight() {
    for _ in $(seq 400); do
        [ "$(metric "$URL" instcald_in_flight_requests)" -ge "$1" ] 2>/dev/null && return 0
        sleep 0.05
    done
    fail "never reached $1 requests in flight"
}

wait_jobs() { for j in $(jobs -p); do [ "$j" = "$PID" ] || wait "$j"; done; }
