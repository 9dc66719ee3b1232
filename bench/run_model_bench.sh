#!/usr/bin/env bash
# The model benchmark of issue 3 ("Speed and memory"): the C engine's calibrated forward next to
# ONNX Runtime on the same network, weights and input, in one run, printing one table
# (docs/benchmarks.md has the results and the exact command).
#
#   bench/run_model_bench.sh                 # all networks, 3 rounds x 5 reps
#   NETS="tiny small" ROUNDS=5 REPS=5 bench/run_model_bench.sh
#
# Environment: INSTCAL (the instcal binary, default build-bench/core/cli/instcal; or BENCH_MODEL,
# the whole command standing for `instcal bench model`), OUT (scratch
# dir for the exported models, default /tmp/ic-bench; the R-52 weights are ~310 MB, never commit
# them), NETS (subset of "tiny small shipped r52"; shipped = the
# default model's architecture with random weights; r52l = R-52-DSConv at 1024x2048), ROUNDS, REPS,
# ONE_THREAD (1: also time both runtimes on one thread; peak RSS is printed per runtime and engine
# for the 2-thread runs), ENGINES (the C forwards to time, each
# against the same round's ORT: any of "blocked exact nchw", see model/pdl.h; default "blocked nchw").
#
# Why rounds: the machine is shared and noisy. Every round runs the C engine and ORT back to back
# on each network, so each C/ORT ratio comes from one round (the same load), and the table shows
# the median over rounds. Within the C run the calibration modes alternate per repetition.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
INSTCAL="${INSTCAL:-$ROOT/build-bench/core/cli/instcal}"
OUT="${OUT:-/tmp/ic-bench}"
NETS="${NETS:-tiny small r52}"
ROUNDS="${ROUNDS:-3}"
REPS="${REPS:-5}"
ONE_THREAD="${ONE_THREAD:-1}"
ENGINES="${ENGINES:-blocked nchw}"
PY=/usr/bin/python3
# the command that runs `instcal bench model` (override to time another build)
read -r -a BENCH_MODEL <<<"${BENCH_MODEL:-$INSTCAL bench model}"

# name -> export arguments and input size
net_args() {
    case "$1" in
        tiny) echo "--config tiny-test --size 256x512" ;;
        small) echo "--config $HERE/configs/small-dsconv.json --size 256x512" ;;
        shipped) echo "--config $ROOT/models/configs/synthcity-small.json --size 256x512" ;;
        r52) echo "--config cityscapes-r52-dsconv --size 512x1024 --pool-kernel 32,64" ;;
        r52l) echo "--config cityscapes-r52-dsconv --size 1024x2048 --pool-kernel 32,64" ;;
        *) echo "unknown network $1" >&2; exit 2 ;;
    esac
}
net_size() { net_args "$1" | sed 's/.*--size \([0-9x]*\).*/\1/'; }

mkdir -p "$OUT"
if [ ! -d "$HERE/node_modules/onnxruntime-node" ]; then
    # --ignore-scripts: the CPU runtime ships inside the package (bin/napi-v6/linux/x64); the
    # install script only fetches optional GPU providers
    (cd "$HERE" && npm ci --ignore-scripts --no-audit --no-fund >/dev/null)
fi

# 1. export once per network (weights for C, .onnx for ORT, the shared input)
for n in $NETS; do
    if [ ! -f "$OUT/$n.onnx" ] || [ ! -f "$OUT/$n.weights.safetensors" ]; then
        echo "== export $n" >&2
        # shellcheck disable=SC2046
        "$PY" "$HERE/export_onnx.py" $(net_args "$n") --out "$OUT/$n" 2>&1 | grep -v -i warn >&2 || true
    fi
done

# 2. same computation? C's `none` outputs against ORT's and PyTorch's float64 reference
for n in $NETS; do
    s=$(net_size "$n")
    for e in $ENGINES; do
        "${BENCH_MODEL[@]}" --model "$OUT/$n.weights.safetensors" --size "$s" --input "$OUT/$n.input.f32" \
            --modes none --reps 1 --engine "$e" --dump "$OUT/$n.c.f32" >/dev/null
        echo "== $n $s: outputs, C engine $e (against ORT, then PyTorch float64)" >&2
        node "$HERE/ort_bench.js" --model "$OUT/$n.onnx" --input "$OUT/$n.input.f32" --size "$s" --reps 1 \
            --compare "$OUT/$n.c.f32" --compare "$OUT/$n.torch.f32" | grep 'max rel err' >&2
        rm -f "$OUT/$n.c.f32"
    done
done

# 3. timing rounds, runtimes interleaved; one JSON line per run into $LOG
LOG="$OUT/model_bench.jsonl"
: >"$LOG"
load0="$(date -u '+%F %H:%M') UTC, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
    for n in $NETS; do
        s=$(net_size "$n")
        echo "== round $r/$ROUNDS $n $s ($(date -u +%H:%M:%S), load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
        common=(--model "$OUT/$n.weights.safetensors" --size "$s" --input "$OUT/$n.input.f32" --reps "$REPS" --json)
        ort=(node "$HERE/ort_bench.js" --model "$OUT/$n.onnx" --input "$OUT/$n.input.f32" --size "$s" --reps "$REPS")
        tag="s/^{/{\"net\":\"$n\",\"round\":$r,/"
        c2() { for e in $ENGINES; do "${BENCH_MODEL[@]}" "${common[@]}" --engine "$e" --threads 2 --modes none,instcal-u,instcal-c | tail -1 | sed "$tag" >>"$LOG"; done; }
        c1() { for e in $ENGINES; do "${BENCH_MODEL[@]}" "${common[@]}" --engine "$e" --threads 1 --modes none | tail -1 | sed "$tag" >>"$LOG"; done; }
        # the order flips every round so neither runtime always runs first
        if [ $((r % 2)) = 1 ]; then
            c2
            "${ort[@]}" --threads 2 | tail -1 | sed "$tag" >>"$LOG"
        else
            "${ort[@]}" --threads 2 | tail -1 | sed "$tag" >>"$LOG"
            c2
        fi
        if [ "$ONE_THREAD" = 1 ]; then
            "${ort[@]}" --threads 1 | tail -1 | sed "$tag" >>"$LOG"
            c1
        fi
    done
done

# 4. one table
echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
echo "# rounds started $load0; ended $(date -u '+%H:%M') UTC, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" "$HERE/summarise_model_bench.py" "$LOG"
