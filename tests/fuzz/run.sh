#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded time and fails on any crash,
# leak, sanitizer report or hang.
# Usage: tests/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]   (default 30 s)
#   CI: tests/fuzz/run.sh 20        longer: tests/fuzz/run.sh 600
# The committed seeds (tests/fuzz/corpus/<target>) are only read; new inputs
# go to build-fuzz/corpus/<target>, crashes to build-fuzz/artifacts/. A crash
# becomes a regression seed: copy it into tests/fuzz/regressions/<target>/
# (replayed on every run, before fuzzing).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SECS=${1:-30}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(image safetensors label http request oip)
B=${FUZZ_BUILD:-$ROOT/build-fuzz}
"$ROOT/tests/fuzz/build.sh" "$B" || exit 1
mkdir -p "$B/artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
fail=0
nfail=0
summary=()
for t in "${TARGETS[@]}"; do
    exe=$B/fuzz_$t seeds=$ROOT/tests/fuzz/corpus/$t reg=$ROOT/tests/fuzz/regressions/$t
    work=$B/corpus/$t
    mkdir -p "$work"
    log=$B/fuzz_$t.log
    # Replay regressions first: each must run clean.
    if [ -d "$reg" ] && [ -n "$(ls -A "$reg" 2>/dev/null)" ]; then
        if ! nice -n "${FUZZ_NICE:-15}" "$exe" -runs=1 "$reg"/* >"$B/fuzz_${t}_regress.log" 2>&1; then
            echo "fuzz $t: a regression input fails (see $B/fuzz_${t}_regress.log)"
            grep -m3 'runtime error\|ERROR: AddressSanitizer\|SUMMARY\|Running:' "$B/fuzz_${t}_regress.log"
            summary+=("$t: regression input fails, not fuzzed")
            fail=1
            nfail=$((nfail + 1))
            continue
        fi
    fi
    # -timeout: one input over 25 s is a hang; -rss_limit_mb: a decompression
    # bomb that slips past the limits shows up as an out-of-memory crash.
    # A fixed seed keeps CI reproducible; FUZZ_SEED=0 lets libFuzzer pick one.
    nice -n "${FUZZ_NICE:-15}" "$exe" "$work" "$seeds" -max_total_time="$SECS" -timeout=25 \
        -seed="${FUZZ_SEED:-1}" \
        -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$B/artifacts/${t}-" >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
    summary+=("$t: ${execs:-?} executions in ${SECS} s, coverage ${cov:-?} edges, exit $rc")
    if [ $rc -ne 0 ]; then
        echo "fuzz $t: FAILED (exit $rc); log $log, artifacts $B/artifacts/${t}-*"
        grep -m1 -A30 'ERROR\|SUMMARY\|==ERROR\|deadly signal\|fuzz_http:' "$log" | head -40
        fail=1
        nfail=$((nfail + 1))
    fi
done
printf '%s\n' "${summary[@]}"
echo "fuzz: $((${#TARGETS[@]} - nfail)) passed, $nfail failed"
[ $fail -eq 0 ]
