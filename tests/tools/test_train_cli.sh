#!/bin/sh
# `instcal train --stop-at`: a run stopped after iteration 2 and resumed to
# iteration 4 gives the same weights, bit for bit, as one uninterrupted run
# of 4 (the shipped model was made in such legs); a stopped run writes no
# final model; stopping again at or before the checkpoint is a no-op; a
# --stop-at past --iters is refused. Needs python3 + numpy.
# Usage: test_train_cli.sh INSTCAL_BINARY
set -eu
BIN=$1
PY=/usr/bin/python3
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CFG=$ROOT/models/configs/synthcity-small.json
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
fail() { echo "FAIL: $*"; echo "0 passed, 1 failed"; exit 1; }
export OPENBLAS_NUM_THREADS=1
train() { # CKDIR OUT [extra...]
    ck=$1 out=$2
    shift 2
    "$BIN" train --config "$CFG" --synth 6 --synth-seed 3 --size 128x256 --batch 1 --iters 4 \
        --warmup 1 --seed 5 --checkpoint-dir "$ck" --checkpoint-every 100 --log-every 1 \
        --out "$out" "$@"
}
train "$TMP/a" "$TMP/a.safetensors" >"$TMP/log_a" 2>&1 || { cat "$TMP/log_a"; fail "plain run"; }
train "$TMP/b" "$TMP/b.safetensors" --stop-at 2 >"$TMP/log_b1" 2>&1 ||
    { cat "$TMP/log_b1"; fail "stopped run"; }
grep -q "stopped at iteration 2" "$TMP/log_b1" || fail "no stop message"
[ ! -e "$TMP/b.safetensors" ] || fail "a stopped run wrote the final model"
train "$TMP/b" "$TMP/b.safetensors" --stop-at 2 --resume >"$TMP/log_b2" 2>&1 ||
    { cat "$TMP/log_b2"; fail "stopping again"; }
grep -q "nothing to do" "$TMP/log_b2" || fail "stopping again at the checkpoint did work"
echo "ok: --stop-at 2 checkpoints and writes no model"
train "$TMP/b" "$TMP/b.safetensors" --resume >"$TMP/log_b3" 2>&1 || { cat "$TMP/log_b3"; fail "resume"; }
"$PY" - "$TMP/a.safetensors" "$TMP/b.safetensors" <<'PYEOF' || fail "resumed weights differ"
import json, struct, sys
def tensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    h.pop("__metadata__", None)
    return {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in h.items()}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
assert a.keys() == b.keys(), "different tensor names"
diff = [k for k in a if a[k] != b[k]]
assert not diff, "%d tensors differ, e.g. %s" % (len(diff), diff[:3])
print("ok: 2 + 2 resumed iterations = 4 iterations, %d tensors bit-identical" % len(a))
PYEOF
if train "$TMP/c" "$TMP/c.safetensors" --stop-at 4 >"$TMP/log_c" 2>&1; then
    fail "--stop-at equal to --iters accepted"
fi
grep -q "below --iters" "$TMP/log_c" || { cat "$TMP/log_c"; fail "no clear message"; }
echo "ok: --stop-at >= --iters is refused"
echo "3 passed, 0 failed"
