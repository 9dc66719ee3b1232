#!/usr/bin/python3
"""Convert a detectron2 Panoptic-DeepLab checkpoint to InstCal safetensors.

  tools/convert_detectron2.py --config models/configs/cityscapes-r52.json model_final_bd324a.pkl out.safetensors

Accepted inputs:
  * detectron2 model-zoo pickle {"model": {name: ndarray}, "__author__": ...} (pickle, latin1)
  * a plain pickled dict {name: ndarray}
  * a torch checkpoint (.pth/.pt; needs torch): a state_dict, or {"model": state_dict}
    or {"state_dict": ...}
  * InstCal-Pano checkpoints: their BN calibration tensors are renamed to ours
    (<bn>.momentum -> <bn>.calib_mean, momentum2 -> calib_var,
     momentum_basis_mean [1,K,C] -> instcal_c.basis_mean [K,C], mean_net.0 -> instcal_c.mean_net.fc1,
     mean_net.2 -> instcal_c.mean_net.fc2, same for var)

Output: safetensors, all tensors F32, names = detectron2 state_dict names (+ calibration names, see
docs/model-config.md), in the reference model's order; __metadata__["config"] = the config JSON.
Dropped with a note: *.num_batches_tracked, pixel_mean/pixel_std (the config carries them),
augment_net.* (InstCal-Pano's DeepAugment CAE, training only).
Every name and shape is validated against the config; any missing, unexpected or wrongly shaped
tensor is an error (exit status 1) naming the tensor. Needs only python3 + numpy.
"""
import argparse
import json
import os
import pickle
import re
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'golden'))
import pdl_torch  # noqa: E402  (pure-Python part; torch not required)
import stio  # noqa: E402


class ConvertError(Exception):
    pass


def _to_numpy(v, name):
    if isinstance(v, np.ndarray):
        return v
    if hasattr(v, 'detach'):  # torch tensor
        return v.detach().cpu().numpy()
    if isinstance(v, (int, float)):
        return np.asarray(v)
    raise ConvertError('tensor %s: unsupported value type %s' % (name, type(v).__name__))


def read_checkpoint(path):
    with open(path, 'rb') as f:
        head = f.read(4)
    obj = None
    if head[:2] == b'PK' or path.endswith(('.pth', '.pt')):  # torch zip / legacy format
        try:
            import torch
        except ImportError:
            raise ConvertError('%s looks like a torch checkpoint; reading it needs python3-torch' % path)
        obj = torch.load(path, map_location='cpu')
    else:
        with open(path, 'rb') as f:
            try:
                obj = pickle.load(f, encoding='latin1')
            except Exception as e:  # noqa: BLE001
                raise ConvertError('%s: cannot unpickle (%s)' % (path, e))
    if isinstance(obj, dict) and 'model' in obj and isinstance(obj['model'], dict):
        if '__author__' in obj:
            print('note: detectron2 checkpoint, __author__ = %r' % (obj['__author__'],))
        obj = obj['model']
    elif isinstance(obj, dict) and 'state_dict' in obj and isinstance(obj['state_dict'], dict):
        obj = obj['state_dict']
    if not isinstance(obj, dict):
        raise ConvertError('%s: expected a dict of tensors, got %s' % (path, type(obj).__name__))
    out = {}
    for k, v in obj.items():
        if not isinstance(k, str):
            raise ConvertError('%s: non-string key %r' % (path, k))
        if k.startswith('module.'):
            k = k[len('module.'):]
        out[k] = _to_numpy(v, k)
    return out


_INSTCAL_PANO = [
    (re.compile(r'^(.*\.norm)\.momentum$'), r'\1.calib_mean', None),
    (re.compile(r'^(.*\.norm)\.momentum2$'), r'\1.calib_var', None),
    (re.compile(r'^(.*\.norm)\.momentum_basis_(mean|var)$'), r'\1.instcal_c.basis_\2', 'squeeze0'),
    (re.compile(r'^(.*\.norm)\.(mean|var)_net\.0\.(weight|bias)$'), r'\1.instcal_c.\2_net.fc1.\3', None),
    (re.compile(r'^(.*\.norm)\.(mean|var)_net\.2\.(weight|bias)$'), r'\1.instcal_c.\2_net.fc2.\3', None),
]


def normalise_names(tensors):
    out, notes = {}, []
    dropped = {'num_batches_tracked': 0, 'pixel': [], 'augment_net': 0}
    for k, v in tensors.items():
        if k.endswith('.num_batches_tracked'):
            dropped['num_batches_tracked'] += 1
            continue
        if k in ('pixel_mean', 'pixel_std'):
            dropped['pixel'].append('%s=%s' % (k, [round(float(x), 4) for x in np.asarray(v).reshape(-1)]))
            continue
        if k.startswith('augment_net.'):
            dropped['augment_net'] += 1
            continue
        for rx, rep, fix in _INSTCAL_PANO:
            if rx.match(k):
                k = rx.sub(rep, k)
                if fix == 'squeeze0' and v.ndim == 3 and v.shape[0] == 1:
                    v = v[0]
                break
        if k in out:
            raise ConvertError('tensor %s appears twice after renaming' % k)
        out[k] = v
    if dropped['num_batches_tracked']:
        notes.append('dropped %d num_batches_tracked buffers' % dropped['num_batches_tracked'])
    if dropped['pixel']:
        notes.append('dropped %s (input normalisation comes from the config)' % ', '.join(dropped['pixel']))
    if dropped['augment_net']:
        notes.append('dropped %d augment_net.* tensors (training-only DeepAugment CAE)' % dropped['augment_net'])
    return out, notes


def validate(cfg, tensors):
    """Returns the ordered list of (name, array) to write; raises ConvertError with all problems."""
    spec = pdl_torch.expected_tensors(cfg, include_num_batches_tracked=False)
    calib = {}
    for kind in ('instcal-u', 'instcal-c'):
        cs = pdl_torch.calib_tensor_specs(cfg, kind)
        present = [k for k in cs if k in tensors]
        if present:
            missing = [k for k in cs if k not in tensors]
            if missing:
                raise ConvertError('%s calibration tensors are incomplete: %d missing, first: %s'
                                   % (kind, len(missing), ', '.join(missing[:3])))
            calib.update(cs)
    shape_bad, missing, unexpected, dtype_bad = [], [], [], []
    allowed = dict(spec)
    allowed.update(calib)
    for k, shp in allowed.items():
        if k not in tensors:
            missing.append('missing tensor %s (expected shape %s)' % (k, list(shp)))
        elif tuple(tensors[k].shape) != tuple(shp):
            shape_bad.append('tensor %s has shape %s, config %s expects %s'
                             % (k, list(tensors[k].shape), cfg['name'], list(shp)))
        elif tensors[k].dtype.kind not in 'fiu':
            dtype_bad.append('tensor %s has non-numeric dtype %s' % (k, tensors[k].dtype))
    for k in tensors:
        if k not in allowed:
            unexpected.append('unexpected tensor %s shape %s' % (k, list(np.shape(tensors[k]))))
    n = len(shape_bad) + len(missing) + len(unexpected) + len(dtype_bad)
    if n:
        lines = []
        for group in (shape_bad, dtype_bad, missing, unexpected):
            lines += group[:8] + (['... and %d more like this' % (len(group) - 8)] if len(group) > 8 else [])
        for hn in ('sem_seg_head', 'ins_embed_head'):
            ds_ckpt = any(k.startswith(hn + '.') and '.depthwise.' in k for k in tensors)
            if ds_ckpt != cfg[hn]['use_depthwise_separable_conv']:
                lines.append('hint: the checkpoint\'s %s %s depthwise-separable convs but the config has '
                             '%s.use_depthwise_separable_conv = %s (wrong config for this checkpoint?)'
                             % (hn, 'has' if ds_ckpt else 'has no', hn,
                                str(cfg[hn]['use_depthwise_separable_conv']).lower()))
        raise ConvertError('checkpoint does not match config %s (%d wrong shape, %d missing, %d unexpected%s):\n  %s'
                           % (cfg['name'], len(shape_bad), len(missing), len(unexpected),
                              ', %d bad dtype' % len(dtype_bad) if dtype_bad else '', '\n  '.join(lines)))
    out = []
    for k in allowed:
        a = np.ascontiguousarray(tensors[k], dtype=np.float32)
        if not np.all(np.isfinite(a)):
            raise ConvertError('tensor %s contains NaN or Inf' % k)
        out.append((k, a))
    for k, a in out:
        if k.endswith('.norm.running_var') and np.any(a < 0):
            raise ConvertError('tensor %s has negative variances' % k)
    return out, sorted(set(kind for kind in ('instcal-u', 'instcal-c')
                           if any(n in calib for n in pdl_torch.calib_tensor_specs(cfg, kind))))


def convert(cfg_path, src, dst):
    cfg = pdl_torch.load_config(cfg_path)
    tensors = read_checkpoint(src)
    tensors, notes = normalise_names(tensors)
    items, kinds = validate(cfg, tensors)
    meta = {'config': json.dumps(cfg, separators=(',', ':')), 'format': 'instcal-pdl-weights',
            'source': os.path.basename(src), 'calibration': ','.join(kinds) or 'none'}
    tmp = dst + '.tmp'
    stio.save(tmp, dict(items), meta)
    os.replace(tmp, dst)
    for n in notes:
        print('note: ' + n)
    print('wrote %s: %d tensors (config %s%s)' % (dst, len(items), cfg['name'],
                                                  ', calibration: ' + ', '.join(kinds) if kinds else ''))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--config', required=True, help='model config JSON (models/configs/*.json)')
    ap.add_argument('input', help='detectron2 .pkl, pickled dict, or torch .pth')
    ap.add_argument('output', help='output .safetensors')
    args = ap.parse_args(argv)
    try:
        return convert(args.config, args.input, args.output)
    except (ConvertError, pdl_torch.ConfigError, OSError) as e:
        print('convert_detectron2: error: %s' % e, file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
