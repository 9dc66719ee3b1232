#!/bin/sh
# tools/convert_detectron2.py: a fake detectron2 model-zoo pickle with the real R-52-DSConv key set
# and shapes (random values) converts, reads back with the right names/shapes/values and config;
# broken checkpoints (wrong shape, missing key, unexpected key, wrong config) fail with a message
# naming the tensor and a non-zero exit status. Needs python3 + numpy only.
set -eu
PY=${PYTHON:-/usr/bin/python3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
CONV="$PY $ROOT/tools/convert_detectron2.py"

fail() { echo "FAIL: $*" >&2; exit 1; }

# make_pkl CONFIG OUT [MUTATION]
make_pkl() {
  "$PY" - "$ROOT" "$1" "$2" "${3:-}" <<'PYEOF'
import pickle, sys
import numpy as np
root, cfgname, out, mutation = sys.argv[1:5]
sys.path.insert(0, root + '/tests/golden')
import pdl_torch
cfg = pdl_torch.load_config('%s/models/configs/%s.json' % (root, cfgname))
rng = np.random.default_rng(1)
model = {}
for k, shp in pdl_torch.expected_tensors(cfg).items():
    if k.endswith('num_batches_tracked'):
        model[k] = np.array(90000, dtype=np.int64)
    elif k.endswith('running_var'):
        model[k] = rng.random(shp, dtype=np.float32) + 0.5
    else:
        model[k] = rng.standard_normal(shp, dtype=np.float32)
model['pixel_mean'] = np.array([123.675, 116.28, 103.53], dtype=np.float32).reshape(3, 1, 1)
model['pixel_std'] = np.array([58.395, 57.12, 57.375], dtype=np.float32).reshape(3, 1, 1)
if mutation == 'shape':
    model['sem_seg_head.decoder.res3.fuse_conv.depthwise.weight'] = np.zeros((321, 1, 5, 5), np.float32)
elif mutation == 'missing':
    del model['ins_embed_head.center_predictor.bias']
elif mutation == 'extra':
    model['sem_seg_head.decoder.res4.project_conv.weight'] = np.zeros((1,), np.float32)
elif mutation == 'instcal_u':
    for k, shp in pdl_torch.calib_tensor_specs(cfg, 'instcal-u').items():
        model[k.replace('.calib_mean', '.momentum').replace('.calib_var', '.momentum2')] = np.full(shp, 0.1, np.float32)
with open(out, 'wb') as f:
    pickle.dump({'model': model, '__author__': 'Detectron2 Model Zoo', 'matching_heuristics': True}, f, protocol=2)
PYEOF
}

# check_out CONFIG PKL OUT
check_out() {
  "$PY" - "$ROOT" "$1" "$2" "$3" <<'PYEOF'
import json, pickle, sys
import numpy as np
root, cfgname, pkl, out = sys.argv[1:5]
sys.path.insert(0, root + '/tests/golden')
import pdl_torch, stio
cfg = pdl_torch.load_config('%s/models/configs/%s.json' % (root, cfgname))
spec = pdl_torch.expected_tensors(cfg, include_num_batches_tracked=False)
t, meta = stio.load(out)
src = pickle.load(open(pkl, 'rb'), encoding='latin1')['model']
assert set(t) == set(spec), sorted(set(t) ^ set(spec))[:5]
for k, shp in spec.items():
    assert t[k].shape == shp, (k, t[k].shape, shp)
    assert t[k].dtype == np.float32, k
    assert np.array_equal(t[k], src[k]), k
assert json.loads(meta['config'])['name'] == cfg['name']
print('ok: %d tensors, names/shapes/values match %s' % (len(t), cfgname))
PYEOF
}

# expect_fail CONFIG PKL WORD...: conversion must fail and stderr must contain every WORD
expect_fail() {
  cfg=$1 pkl=$2; shift 2
  if $CONV --config "$ROOT/models/configs/$cfg.json" "$pkl" "$TMP/bad.safetensors" 2>"$TMP/err" >/dev/null; then
    fail "conversion of $pkl with $cfg should have failed"
  fi
  for w in "$@"; do grep -qF -- "$w" "$TMP/err" || { cat "$TMP/err" >&2; fail "error message lacks '$w'"; }; done
  [ ! -e "$TMP/bad.safetensors" ] || fail "output written despite error"
  echo "ok: rejected ($(head -n 2 "$TMP/err" | tail -n 1 | sed 's/^ *//'))"
}

# 1. real-size R-52-DSConv (544 keys incl. 89 num_batches_tracked -> 455 tensors written)
make_pkl cityscapes-r52-dsconv "$TMP/ds.pkl"
$CONV --config "$ROOT/models/configs/cityscapes-r52-dsconv.json" "$TMP/ds.pkl" "$TMP/ds.safetensors" >"$TMP/log"
grep -q 'dropped 89 num_batches_tracked' "$TMP/log" || { cat "$TMP/log"; fail "num_batches_tracked note"; }
grep -q 'pixel_mean' "$TMP/log" || fail "pixel_mean note"
check_out cityscapes-r52-dsconv "$TMP/ds.pkl" "$TMP/ds.safetensors"
# the DSConv checkpoint does not fit the regular config
expect_fail cityscapes-r52 "$TMP/ds.pkl" "missing tensor sem_seg_head.decoder.res2.fuse_conv.0.weight" "use_depthwise_separable_conv" \
  "unexpected tensor sem_seg_head.decoder.res2.fuse_conv.depthwise.weight"
rm -f "$TMP/ds.pkl" "$TMP/ds.safetensors"

# 2. broken checkpoints (tiny config: fast)
make_pkl tiny-test "$TMP/shape.pkl" shape
expect_fail tiny-test "$TMP/shape.pkl" "sem_seg_head.decoder.res3.fuse_conv.depthwise.weight has shape [321, 1, 5, 5]"
make_pkl tiny-test "$TMP/missing.pkl" missing
expect_fail tiny-test "$TMP/missing.pkl" "missing tensor ins_embed_head.center_predictor.bias"
make_pkl tiny-test "$TMP/extra.pkl" extra
expect_fail tiny-test "$TMP/extra.pkl" "unexpected tensor sem_seg_head.decoder.res4.project_conv.weight"
printf 'not a pickle' >"$TMP/garbage.pkl"
expect_fail tiny-test "$TMP/garbage.pkl" "cannot unpickle"

# 3. InstCal-Pano style calibration tensors are renamed to <bn>.calib_mean / calib_var
make_pkl tiny-test "$TMP/u.pkl" instcal_u
$CONV --config "$ROOT/models/configs/tiny-test.json" "$TMP/u.pkl" "$TMP/u.safetensors" >/dev/null
"$PY" - "$ROOT" "$TMP/u.safetensors" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[1] + '/tests/golden')
import stio
t, meta = stio.load(sys.argv[2])
assert t['backbone.stem.conv1.norm.calib_mean'].shape == (4,), 'calib_mean'
assert meta['calibration'] == 'instcal-u', meta['calibration']
print('ok: InstCal-Pano momentum/momentum2 -> calib_mean/calib_var')
PYEOF

echo "test_convert_detectron2: PASS"
