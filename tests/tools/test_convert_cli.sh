#!/bin/sh
# `instcal convert detectron2` end to end on the tiny config: a fake model-zoo
# pickle with detectron2's keys and shapes (random values, BN statistics kept
# sane) converts, and the converted model segments an image. A pickle with a
# misshapen tensor is refused with its name. Needs python3 + numpy.
# Usage: test_convert_cli.sh INSTCAL_BINARY
set -eu
BIN=$1
PY=/usr/bin/python3
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM

make_pkl() { # OUT [bad]
  "$PY" - "$ROOT" "$1" "${2:-}" <<'PYEOF'
import pickle, sys
import numpy as np
root, out, bad = sys.argv[1:4]
sys.path.insert(0, root + '/tests/golden')
import pdl_torch
cfg = pdl_torch.load_config(root + '/models/configs/tiny-test.json')
rng = np.random.default_rng(3)
model = {}
for k, shp in pdl_torch.expected_tensors(cfg).items():
    if k.endswith('num_batches_tracked'):
        model[k] = np.array(1000, dtype=np.int64)
    elif k.endswith('running_var'):
        model[k] = (rng.random(shp) + 0.5).astype(np.float32)
    else:
        model[k] = (rng.standard_normal(shp) * 0.1).astype(np.float32)
if bad:
    model['sem_seg_head.predictor.weight'] = np.zeros((1, 2, 3, 4), np.float32)
with open(out, 'wb') as f:
    pickle.dump({'model': model, '__author__': 'test'}, f)
PYEOF
}

make_pkl "$TMP/good.pkl"
"$BIN" convert detectron2 "$TMP/good.pkl" "$TMP/good.safetensors" --config tiny-test >/dev/null
"$BIN" segment --model "$TMP/good.safetensors" --json "$TMP/out.json" \
    "$ROOT/tests/data/images/grad.jpg" 2>/dev/null
grep -q '"model": "tiny-test"' "$TMP/out.json" || { echo "FAIL: converted model did not segment" >&2; exit 1; }

make_pkl "$TMP/bad.pkl" bad
if "$BIN" convert detectron2 "$TMP/bad.pkl" "$TMP/bad.safetensors" --config tiny-test 2>"$TMP/err"; then
    echo "FAIL: a misshapen tensor was accepted" >&2
    exit 1
fi
grep -q "sem_seg_head.predictor.weight" "$TMP/err" || { echo "FAIL: error does not name the tensor" >&2; cat "$TMP/err" >&2; exit 1; }
echo "1 passed, 0 failed"
