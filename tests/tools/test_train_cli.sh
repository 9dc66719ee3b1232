#!/bin/sh
# `instcal train --stop-at`: a run stopped after iteration 2 and resumed to
# iteration 4 gives the same weights, bit for bit, as one uninterrupted run
# of 4 (the shipped model was made in such legs); a stopped run writes no
# final model; stopping again at or before the checkpoint is a no-op; a
# --stop-at past --iters is refused; --init starts from a model's weights
# (and drops its calibration tensors); bad --class-weights / --scale are
# refused. Needs python3.
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
# --init with lr 0: every weight and BN affine tensor equals the initial
# model's (only BN running statistics move in training mode), and its
# calibration tensors are gone; a fresh start with lr 0 differs.
INIT=$ROOT/models/default.safetensors
"$BIN" train --config "$CFG" --synth 6 --synth-seed 3 --size 128x256 --batch 1 --iters 1 --lr 0 \
    --init "$INIT" --class-weights pole=3,person=1.5 --scale 0.75,1.5 --out "$TMP/d.safetensors" \
    >"$TMP/log_d" 2>&1 || { cat "$TMP/log_d"; fail "--init run"; }
"$BIN" train --config "$CFG" --synth 6 --synth-seed 3 --size 128x256 --batch 1 --iters 1 --lr 0 \
    --out "$TMP/e.safetensors" >"$TMP/log_e" 2>&1 || { cat "$TMP/log_e"; fail "fresh lr-0 run"; }
"$PY" - "$INIT" "$TMP/d.safetensors" "$TMP/e.safetensors" <<'PYEOF' || fail "--init did not start from the model"
import json, struct, sys
def tensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    h.pop("__metadata__", None)
    return {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in h.items()}
init, d, e = (tensors(p) for p in sys.argv[1:4])
calib = [k for k in init if "calib" in k or "instcal_c" in k]
assert calib, "the initial model has no calibration tensors to drop"
assert not [k for k in d if "calib" in k or "instcal_c" in k], "calibration tensors kept"
learned = [k for k in d if not k.endswith(("running_mean", "running_var"))]
diff = [k for k in learned if d[k] != init[k]]
assert not diff, "%d tensors differ from the initial model, e.g. %s" % (len(diff), diff[:3])
assert [k for k in learned if d[k] != e[k]], "--init gave the fresh initialisation"
print("ok: --init starts from the model's %d weight tensors and drops %d calibration tensors"
      % (len(learned), len(calib)))
PYEOF
for bad in "--class-weights pole" "--class-weights tree=2" "--class-weights pole=-1" \
           "--scale 2,1" "--scale 0,1" "--scale x"; do
    # shellcheck disable=SC2086
    if "$BIN" train --config "$CFG" --synth 6 --iters 1 $bad --out "$TMP/f.safetensors" \
        >"$TMP/log_f" 2>&1; then
        fail "$bad accepted"
    fi
    grep -q -- "${bad%% *}" "$TMP/log_f" || { cat "$TMP/log_f"; fail "no message for $bad"; }
done
[ ! -e "$TMP/f.safetensors" ] || fail "a refused run wrote a model"
echo "ok: bad --class-weights and --scale are refused with a message"
echo "5 passed, 0 failed"
