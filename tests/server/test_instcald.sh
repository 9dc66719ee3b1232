#!/usr/bin/env bash
# Integration test: runs the real instcald with the test backend (no model) on 127.0.0.1 with
# an ephemeral port and checks every route, each error path, overload,
# deadlines, client disconnects, SIGHUP reload and SIGTERM drain.
# Usage: test_instcald.sh path/to/instcald
set -uo pipefail

INSTCALD=${1:?usage: test_instcald.sh path/to/instcald}
command -v curl >/dev/null || { echo "SKIP: curl missing"; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq missing"; exit 77; }

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init instcald-it
DAEMON_ARGS=(--backend test)

# ---- fixtures -------------------------------------------------------------------
printf '\xff\xd8\xff\xe0fake jpeg body' >"$TMP/img.jpg"
printf '\x89PNG\r\n\x1a\nfake png body' >"$TMP/img.png"
printf 'not an image at all' >"$TMP/bad.jpg"
head -c $((2 * 1024 * 1024)) /dev/zero >"$TMP/big.bin"
mkdir -p "$TMP/www/css"
echo '<!doctype html><title>demo</title>' >"$TMP/www/index.html"
echo 'body{}' >"$TMP/www/css/app.css"
echo secret >"$TMP/secret.txt"
ln -s "$TMP/secret.txt" "$TMP/www/leak.txt"
echo 'instcal-test-model alpha' >"$TMP/model.txt"

# ---- routes and error paths -------------------------------------------------------
start main --workers 1 --queue-length 4 --max-upload-bytes 1M --static-dir "$TMP/www" \
    --model "$TMP/model.txt"
grep -q 'event=config .*max_upload_bytes=1048576' "$TMP/main.log" && ok "effective config logged" ||
    fail "effective config not logged"
grep -q 'event=listening .*model=alpha' "$TMP/main.log" && ok "startup names the model" ||
    fail "startup log lacks the model"

expect 200 "GET /healthz" "$URL/healthz"
expect 200 "GET /readyz" "$URL/readyz"
expect 200 "GET /v1/models" "$URL/v1/models"
[ "$(jq -r '.models[0].name' "$TMP/body")" = alpha ] && ok "models names alpha" || fail "models name"
jq -e '.models[0].calibration_modes | index("instcal-c")' "$TMP/body" >/dev/null ||
    fail "models lacks calibration modes"
expect 200 "GET /v2/health/live" "$URL/v2/health/live"
jq -e '.live == true' "$TMP/body" >/dev/null || fail "live body"
expect 200 "GET /v2/health/ready" "$URL/v2/health/ready"
expect 200 "GET /v2" "$URL/v2"
jq -e '.name == "instcald"' "$TMP/body" >/dev/null || fail "v2 metadata"
expect 200 "GET /v2/models/alpha" "$URL/v2/models/alpha"
jq -e '.inputs[0].datatype == "BYTES"' "$TMP/body" >/dev/null || fail "v2 model metadata"
expect 200 "GET /v2/models/alpha/ready" "$URL/v2/models/alpha/ready"
expect_error 404 model_not_found "GET /v2/models/other" "$URL/v2/models/other"
expect 200 "HEAD /healthz" -I "$URL/healthz"
expect_error 404 not_found "unknown API route" "$URL/v1/nothing"
expect_error 404 not_found "unknown file" "$URL/nothing.html"
expect_error 405 method_not_allowed "DELETE /healthz" -X DELETE "$URL/healthz"
grep -qi '^Allow: GET, HEAD' "$TMP/headers" || fail "405 without Allow: GET, HEAD"
expect_error 405 method_not_allowed "GET /v1/segment" "$URL/v1/segment"
grep -qi '^Allow: POST' "$TMP/headers" || fail "405 without Allow: POST"

# static files
expect 200 "GET /" "$URL/"
grep -qi '^Content-Type: text/html' "$TMP/headers" || fail "index content type"
expect 200 "GET /css/app.css" "$URL/css/app.css"
grep -qi '^Content-Type: text/css' "$TMP/headers" || fail "css content type"
expect_error 403 forbidden "traversal /../" --path-as-is "$URL/../secret.txt"
expect_error 403 forbidden "traversal /css/../../" --path-as-is "$URL/css/../../secret.txt"
expect_error 403 forbidden "traversal %2e%2e" --path-as-is "$URL/%2e%2e/secret.txt"
expect_error 403 forbidden "traversal %252e" --path-as-is "$URL/%252e%252e/secret.txt"
expect_error 404 not_found "symlink out of the root" "$URL/leak.txt"

# segmentation: good requests
expect 200 "raw JPEG" -H 'Content-Type: image/jpeg' --data-binary @"$TMP/img.jpg" \
    "$URL/v1/segment?calibration=tbn"
jq -e '.calibration.mode == "tbn" and .image.type == "image/jpeg" and (.timings.total_s >= 0) and (.request_id | length > 0)' \
    "$TMP/body" >/dev/null || fail "raw JPEG body: $(cat "$TMP/body")"
expect 200 "raw PNG" -H 'Content-Type: image/png' --data-binary @"$TMP/img.png" "$URL/v1/segment"
jq -e '.calibration.mode == "instcal-c"' "$TMP/body" >/dev/null || fail "default calibration"
for mode in none manual tbn instcal-u instcal-c tent; do
    expect 200 "multipart calibration=$mode" -F "image=@$TMP/img.png;type=image/png" \
        -F "calibration=$mode" -F m=0.25 -F outputs=panoptic,confidence -F rle=true \
        "$URL/v1/segment"
    jq -e --arg m "$mode" '.calibration.mode == $m and .rle == true and .outputs == ["panoptic","confidence"]' \
        "$TMP/body" >/dev/null || fail "multipart $mode body: $(cat "$TMP/body")"
done
expect 200 "multipart with label" -F "image=@$TMP/img.jpg" -F "label=@$TMP/img.png" "$URL/v1/segment"
jq -e '.label.bytes > 0' "$TMP/body" >/dev/null || fail "label not passed"
expect 200 "request id echoed" -H 'X-Request-Id: abc-123' -H 'Content-Type: image/jpeg' \
    --data-binary @"$TMP/img.jpg" "$URL/v1/segment"
jq -e '.request_id == "abc-123"' "$TMP/body" >/dev/null || fail "request id not echoed"

# segmentation: error paths
expect_error 415 unsupported_media_type "text/plain body" -H 'Content-Type: text/plain' \
    --data-binary @"$TMP/img.jpg" "$URL/v1/segment"
expect_error 415 unsupported_media_type "no content type" -X POST "$URL/v1/segment"
expect_error 413 too_large "Content-Length over the limit" -H 'Content-Type: image/jpeg' \
    --data-binary @"$TMP/big.bin" "$URL/v1/segment"
expect_error 413 too_large "chunked body over the limit" -H 'Content-Type: image/jpeg' \
    -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/big.bin" "$URL/v1/segment"
expect_error 413 too_large "multipart over the limit" -F "image=@$TMP/big.bin" "$URL/v1/segment"
expect_error 400 bad_image "corrupt image" -H 'Content-Type: image/jpeg' \
    --data-binary @"$TMP/bad.jpg" "$URL/v1/segment"
expect_error 400 bad_image "PNG sent as JPEG" -H 'Content-Type: image/jpeg' \
    --data-binary @"$TMP/img.png" "$URL/v1/segment"
expect_error 400 bad_parameter "unknown calibration" -H 'Content-Type: image/jpeg' \
    --data-binary @"$TMP/img.jpg" "$URL/v1/segment?calibration=magic"
expect_error 400 bad_parameter "m > 1" -F "image=@$TMP/img.jpg" -F m=1.5 "$URL/v1/segment"
expect_error 400 bad_parameter "m not a number" -F "image=@$TMP/img.jpg" -F m=abc "$URL/v1/segment"
expect_error 400 bad_parameter "manual without m" -F "image=@$TMP/img.jpg" -F calibration=manual \
    "$URL/v1/segment"
expect_error 400 bad_parameter "unknown output" -F "image=@$TMP/img.jpg" -F outputs=everything \
    "$URL/v1/segment"
expect_error 400 missing_image "multipart without image" -F calibration=tbn "$URL/v1/segment"
expect_error 400 missing_image "empty raw body" -H 'Content-Type: image/jpeg' --data-binary '' \
    "$URL/v1/segment"
expect_error 400 unknown_field "unknown form field" -F "image=@$TMP/img.jpg" -F colour=red \
    "$URL/v1/segment"
printf -- '--XyZ\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xe0 trunc' >"$TMP/trunc.mp"
expect_error 400 bad_multipart "truncated multipart" -H 'Content-Type: multipart/form-data; boundary=XyZ' \
    --data-binary @"$TMP/trunc.mp" "$URL/v1/segment"
expect_error 400 bad_multipart "multipart without boundary" -H 'Content-Type: multipart/form-data' \
    --data-binary @"$TMP/img.jpg" "$URL/v1/segment"
expect 200 "still serving after the errors" "$URL/healthz"

# metrics
BEFORE=$(metric "$URL" 'instcald_http_requests_total{route="segment",status="200",calibration="tbn"}')
expect 200 "one more tbn request" -H 'Content-Type: image/jpeg' --data-binary @"$TMP/img.jpg" \
    "$URL/v1/segment?calibration=tbn"
AFTER=$(metric "$URL" 'instcald_http_requests_total{route="segment",status="200",calibration="tbn"}')
[ "$AFTER" = $((BEFORE + 1)) ] && ok "request counter moved $BEFORE -> $AFTER" ||
    fail "request counter $BEFORE -> $AFTER"
expect 200 "GET /metrics" "$URL/metrics"
grep -qi '^Content-Type: text/plain; version=0.0.4; charset=utf-8' "$TMP/headers" ||
    fail "metrics content type"
if command -v promtool >/dev/null; then
    out=$(promtool check metrics <"$TMP/body" 2>&1)
    [ -z "$out" ] && ok "promtool check metrics is clean" || fail "promtool: $out"
else
    echo "note: promtool not installed (apt-get install prometheus); lint skipped"
fi

# SIGHUP: a good model swaps in, a bad one leaves the old serving
echo 'instcal-test-model beta' >"$TMP/model.txt"
kill -HUP "$PID"
# the reload runs on its own thread: wait (up to 5 s, for loaded machines) for its outcome
until_metric() { # NAME VALUE
    for _ in $(seq 100); do [ "$(metric "$URL" "$1")" = "$2" ] && return 0; sleep 0.05; done
    return 1
}
until_metric 'instcald_model_reloads_total{result="success"}' 1 || true
[ "$(curl -s "$URL/v1/models" | jq -r '.models[0].name')" = beta ] && ok "SIGHUP loads beta" ||
    fail "SIGHUP did not load beta"
echo 'garbage' >"$TMP/model.txt"
kill -HUP "$PID"
until_metric 'instcald_model_reloads_total{result="failure"}' 1 || true
[ "$(curl -s "$URL/v1/models" | jq -r '.models[0].name')" = beta ] && ok "bad model keeps beta" ||
    fail "bad model replaced beta"
[ "$(metric "$URL" 'instcald_model_reloads_total{result="success"}')" = 1 ] || fail "reload success metric"
[ "$(metric "$URL" 'instcald_model_reloads_total{result="failure"}')" = 1 ] || fail "reload failure metric"
grep -q 'event=reload result=failure' "$TMP/main.log" && ok "failed reload logged" || fail "reload failure not logged"
expect 200 "serving after bad reload" -H 'Content-Type: image/jpeg' --data-binary @"$TMP/img.jpg" \
    "$URL/v1/segment"
grep -q 'event=request id=[^ ]* method=POST path=/v1/segment route=segment status=200 .*queue_ms=' \
    "$TMP/main.log" && ok "request log line with stage timings" || fail "request log line"
stop "$PID"

# ---- overload: 1 worker + queue 2, 10 concurrent clients -------------------------
start overload --workers 1 --queue-length 2 --test-sleep-ms 400
for i in $(seq 10); do
    curl -s -o /dev/null -D "$TMP/ov$i.h" -w '%{http_code} %{time_total}\n' \
        -H 'Content-Type: image/jpeg' --data-binary @"$TMP/img.jpg" "$URL/v1/segment" >"$TMP/ov$i" &
done
wait_jobs
n200=$(cat "$TMP"/ov? "$TMP"/ov?? 2>/dev/null | grep -c '^200 ')
n503=$(cat "$TMP"/ov? "$TMP"/ov?? 2>/dev/null | grep -c '^503 ')
slow503=$(cat "$TMP"/ov? "$TMP"/ov?? 2>/dev/null | awk '$1 == 503 && $2 > 0.3' | wc -l)
[ "$n200" -ge 3 ] && [ "$n503" -ge 1 ] && [ $((n200 + n503)) = 10 ] &&
    ok "overload: $n200 x 200, $n503 x 503" || fail "overload: $n200 x 200, $n503 x 503"
[ "$slow503" = 0 ] && ok "503s came quickly" || fail "$slow503 slow 503s"
grep -qi '^Retry-After:' $(grep -l '503' "$TMP"/ov*.h | head -1) && ok "503 has Retry-After" ||
    fail "503 without Retry-After"
[ "$(metric "$URL" 'instcald_rejected_requests_total{reason="queue_full"}')" = "$n503" ] ||
    fail "queue_full metric"

stop "$PID"

# ---- a client that hangs up while queued is dropped before inference -------------
start gone --workers 1 --queue-length 2 --test-sleep-ms 2000
curl -s -o /dev/null -H 'Content-Type: image/jpeg' --data-binary @"$TMP/img.jpg" "$URL/v1/segment" &
wait_inflight 1
curl -s -o /dev/null --max-time 0.5 -H 'Content-Type: image/jpeg' --data-binary @"$TMP/img.jpg" \
    "$URL/v1/segment" &
GONE=$!
wait_inflight 2
wait "$GONE"
wait_jobs
until_metric 'instcald_rejected_requests_total{reason="client_gone"}' 1 || true
[ "$(metric "$URL" 'instcald_rejected_requests_total{reason="client_gone"}')" = 1 ] &&
    ok "disconnected client dropped before work" || fail "client_gone not counted"
stop "$PID"

# ---- deadline: jobs that wait longer than deadline_ms get 504 ----------------------
# The worker sleeps 3 s: long enough that the queued requests' curls have connected and sent their
# bodies before it frees up, even on a loaded machine (at 1.5 s a slow curl arrived late, was picked
# up within its deadline and got 200).
start deadline --workers 1 --queue-length 4 --test-sleep-ms 3000 --deadline-ms 200
for i in 1 2 3; do
    curl -s -o "$TMP/dl$i.body" -w '%{http_code} %{time_total}\n' -H 'Content-Type: image/jpeg' \
        --data-binary @"$TMP/img.jpg" "$URL/v1/segment" >"$TMP/dl$i" &
    [ "$i" = 1 ] && wait_inflight 1
done
wait_jobs
n504=$(cat "$TMP"/dl1 "$TMP"/dl2 "$TMP"/dl3 | grep -c '^504 ')
late=$(cat "$TMP"/dl1 "$TMP"/dl2 "$TMP"/dl3 | awk '$1 == 504 && $2 > 2.0' | wc -l)
[ "$n504" = 2 ] && ok "deadline: 2 queued requests got 504" || fail "deadline: $n504 x 504"
[ "$late" = 0 ] && ok "504 sent by the reaper, not after the worker" || fail "$late late 504s"
stop "$PID"

# ---- a SIGHUP reload does not hold up the deadlines --------------------------------
# The reload (as slow as a request here: 2.5 s) ran on the thread that answers
# expired jobs, so a queued request with a 300 ms deadline got its 504 only
# after the reload (with 16 busy workers and the real model, after 18 s).
echo 'instcal-test-model alpha' >"$TMP/reload.txt"
start reload_deadline --workers 1 --queue-length 4 --test-sleep-ms 2500 --deadline-ms 300 \
    --model "$TMP/reload.txt"
curl -s -o /dev/null -w '%{http_code}\n' -H 'Content-Type: image/jpeg' \
    --data-binary @"$TMP/img.jpg" "$URL/v1/segment" >"$TMP/rd1" &
wait_inflight 1
kill -HUP "$PID"
sleep 0.2 # the reload is under way
curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H 'Content-Type: image/jpeg' \
    --data-binary @"$TMP/img.jpg" "$URL/v1/segment" >"$TMP/rd2"
read -r st t <"$TMP/rd2"
[ "$st" = 504 ] && awk -v t="$t" 'BEGIN { exit !(t < 1.5) }' &&
    ok "queued request answered 504 after ${t} s during a reload" ||
    fail "queued request during a reload: status $st after $t s (deadline 300 ms, reload 2.5 s)"
expect 200 "health answered during the reload" "$URL/v2/health/live"
wait_jobs
for _ in $(seq 100); do grep -q 'event=reload result=success' "$TMP/reload_deadline.log" && break; sleep 0.05; done
grep -q 'event=reload result=success' "$TMP/reload_deadline.log" && ok "reload finished" ||
    fail "reload did not finish"
stop "$PID"

# ---- SIGTERM drains: every accepted request completes, then exit 0 -------------------
# 4 x 1.5 s of queued work: the drain lasts 6 s, so the probes below still find the daemon up when
# their curls start slowly on a loaded machine (at 4 x 0.6 s it had exited: "healthz 000").
start drain --workers 1 --queue-length 4 --test-sleep-ms 1500
for i in 1 2 3 4; do
    curl -s -o /dev/null -w '%{http_code}\n' -H 'Content-Type: image/jpeg' \
        --data-binary @"$TMP/img.jpg" "$URL/v1/segment" >"$TMP/dr$i" &
done
wait_inflight 4
kill -TERM "$PID"
sleep 0.05
expect_error 503 shutting_down "new request while draining" -H 'Content-Type: image/jpeg' \
    --data-binary @"$TMP/img.jpg" "$URL/v1/segment"
expect 503 "readyz while draining" "$URL/readyz"
expect 200 "healthz while draining" "$URL/healthz"
for j in $(jobs -p); do [ "$j" = "$PID" ] || wait "$j"; done
wait "$PID"
rc=$?
[ "$rc" = 0 ] && ok "drain exit status 0" || fail "drain exit status $rc"
n200=$(cat "$TMP"/dr1 "$TMP"/dr2 "$TMP"/dr3 "$TMP"/dr4 | grep -c '^200$')
[ "$n200" = 4 ] && ok "all 4 accepted requests completed" || fail "drain: $n200/4 completed"

# ---- startup errors -------------------------------------------------------------------
"$INSTCALD" --port 0 --wrokers 2 >"$TMP/bad.log" 2>&1
rc=$?
[ "$rc" != 0 ] && grep -q "unknown setting 'wrokers'" "$TMP/bad.log" && ok "unknown flag refused" ||
    fail "unknown flag: rc=$rc $(cat "$TMP/bad.log")"
INSTCALD_QUEUE_LENGTH=zero "$INSTCALD" --port 0 >"$TMP/bad.log" 2>&1
rc=$?
[ "$rc" != 0 ] && grep -q "INSTCALD_QUEUE_LENGTH" "$TMP/bad.log" && ok "bad env value refused" ||
    fail "bad env value: rc=$rc"
"$INSTCALD" --port 0 --backend test --model "$TMP/model.txt" >"$TMP/bad.log" 2>&1
rc=$?
[ "$rc" != 0 ] && grep -q "not a test model" "$TMP/bad.log" && ok "bad model refused at startup" ||
    fail "bad model at startup: rc=$rc"

echo "failures: $FAILS"
[ "$FAILS" = 0 ]
