#!/usr/bin/python3
"""Golden fixture for R-52-DSConv with procedurally generated weights (issue 3).

  /usr/bin/python3 tests/golden/gen_r52.py      # writes tests/golden/fixtures/model_r52_io.safetensors

The random R-52-DSConv weights (~310 MB with InstCal-C) are never stored: both this script and
tests/core/model/test_pdl_r52_golden.c compute every tensor from its name with the generator
below, bit for bit, so only the input and the outputs are committed (~250 KB).

Generator "pdl-splitmix20-v1" (keep in sync with test_pdl_r52_golden.c):
  seed(name) = FNV-1a 64 of the tensor's state_dict name (UTF-8 bytes; offset basis
               0xcbf29ce484222325, prime 0x100000001b3)
  z_i        = splitmix64 finaliser of (seed + (i + 1) * 0x9e3779b97f4a7c15) mod 2^64, where i is
               the element's index in row-major order:
               z ^= z >> 30; z *= 0xbf58476d1ce4e5b9; z ^= z >> 27; z *= 0x94d049bb133111eb;
               z ^= z >> 31
  u_i        = ((z_i >> 44) - 2^19) / 2^19, uniform on a 2^-19 grid in [-1, 1) (exact in float32)
  value, by the name's ending (first rule that matches):
    .conv3.norm.weight (last BN of a  0.1875 + 0.0625 u    in [0.125, 0.25)
      bottleneck's residual branch)
    .norm.weight (BN gamma)           0.75 + 0.25 u        in [0.5, 1)
    .norm.running_var                 0.75 + 0.25 u        in [0.5, 1)
    .norm.bias, .norm.running_mean    0.125 u
    .calib_mean, .calib_var (U)       0.5 + 0.375 u        in [0.125, 0.875)
    .basis_mean, .basis_var (C)       0.25 u
    any other 4-d .weight (conv)      u * f32(sqrt(6 / fan_in)), fan_in = shape[1]*shape[2]*shape[3]
    any other 2-d .weight (C MLP)     u * f32(sqrt(3 / fan_in)), fan_in = shape[1]
    any other .bias (conv, MLP)       0.125 u
  Every value except the conv/MLP weights is exact in float32; those are a single float32
  product of two float32 numbers (one IEEE rounding), so C and numpy agree bit for bit.
  The small residual-branch gamma keeps the 16 bottlenecks close to identity: with gamma ~0.75
  there, TBN on the 4x8 res4/res5 maps amplified rounding so much that PyTorch's own float32
  forward was 4e-4 off its float64 one; now that gap is ~2e-5 for every mode.

Fixture model_r52_io.safetensors:
  image U8 [1,3,H,W];  for every mode M in none, tbn, instcal-u, instcal-c:
    M.sem_logits_s4 [1,19,H/4,W/4], M.center_s4 [1,1,H/4,W/4], M.offset_s4 [1,2,H/4,W/4]
    (the heads' stride-4 maps, complete: they are small);
  plus full-resolution outputs of mode none sampled at rows 1,5,9,.. and columns 1,5,9,..:
    none.sem_logits_sub, none.center_sub, none.offset_sub [1,C,H/4,W/4] (offset values x4).
  __metadata__: generator, config, size (HxW), pool_kernel (kh,kw), modes, sub (offset,stride),
    tensors (count) and checksum (see checksum(); tells a generator mismatch from an engine error).
The reference runs in float64 (pdl_torch) on the float32 weights; outputs stored as float32.
"""
import argparse
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_model  # noqa: E402
import pdl_torch  # noqa: E402
import stio  # noqa: E402

GENERATOR = 'pdl-splitmix20-v1'
CONFIG = 'cityscapes-r52-dsconv'
MODES = ('none', 'tbn', 'instcal-u', 'instcal-c')
SIZE = (64, 128)
POOL_KERNEL = (2, 4)
SUB_OFFSET, SUB_STRIDE = 1, 4
M64 = (1 << 64) - 1


def fnv1a64(name):
    h = 0xcbf29ce484222325
    for b in name.encode('utf-8'):
        h = ((h ^ b) * 0x100000001b3) & M64
    return h


def uniform(name, n):
    """u_i for i in 0..n-1 as float32 (exact)."""
    with np.errstate(over='ignore'):
        i = np.arange(1, n + 1, dtype=np.uint64)
        z = np.uint64(fnv1a64(name)) + i * np.uint64(0x9e3779b97f4a7c15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xbf58476d1ce4e5b9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94d049bb133111eb)
        z = z ^ (z >> np.uint64(31))
    k = (z >> np.uint64(44)).astype(np.int64) - (1 << 19)
    return (k.astype(np.float32) * np.float32(2.0 ** -19)).astype(np.float32)


def tensor_value(name, shape):
    n = int(np.prod(shape)) if len(shape) else 1
    u = uniform(name, n)
    f = np.float32
    if name.endswith('.conv3.norm.weight'):
        v = f(0.1875) + f(0.0625) * u
    elif name.endswith('.norm.weight') or name.endswith('.norm.running_var'):
        v = f(0.75) + f(0.25) * u
    elif name.endswith('.norm.bias') or name.endswith('.norm.running_mean'):
        v = f(0.125) * u
    elif name.endswith('.calib_mean') or name.endswith('.calib_var'):
        v = f(0.5) + f(0.375) * u
    elif name.endswith('.basis_mean') or name.endswith('.basis_var'):
        v = f(0.25) * u
    elif name.endswith('.weight') and len(shape) == 4:
        v = u * f(math.sqrt(6.0 / (shape[1] * shape[2] * shape[3])))
    elif name.endswith('.weight') and len(shape) == 2:
        v = u * f(math.sqrt(3.0 / shape[1]))
    elif name.endswith('.bias'):
        v = f(0.125) * u
    else:
        raise ValueError('no generator rule for %s' % name)
    assert v.dtype == np.float32
    return v.reshape(shape)


def checksum(weights):
    """Order-independent: sum over tensors of seed(name) * (sum of the values' float32 bit patterns),
    mod 2^64, as 16 hex digits."""
    total = 0
    for k, v in weights.items():
        bits = int(np.ascontiguousarray(v).view(np.uint32).astype(np.uint64).sum())
        total = (total + fnv1a64(k) * bits) & M64
    return '%016x' % total


def build(pool_kernel):
    cfg = pdl_torch.load_config(os.path.join(pdl_torch.CONFIG_DIR, CONFIG + '.json'))
    for hn in ('sem_seg_head', 'ins_embed_head'):
        cfg[hn]['aspp_pooling'] = {'type': 'avg', 'kernel': list(pool_kernel)}
    spec = pdl_torch.expected_tensors(cfg, include_num_batches_tracked=False)
    spec.update(pdl_torch.calib_tensor_specs(cfg, 'instcal-u'))
    spec.update(pdl_torch.calib_tensor_specs(cfg, 'instcal-c'))
    weights = {k: tensor_value(k, shp) for k, shp in spec.items()}
    model = pdl_torch.load_weights(pdl_torch.build_model(cfg).double(), weights)
    model.set_strict_pool(True)
    return cfg, model, weights


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default=os.path.join(HERE, 'fixtures', 'model_r52_io.safetensors'))
    ap.add_argument('--print-checksums', action='store_true',
                    help='print sums of a few generated tensors (to compare with the C side)')
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    h, w = SIZE
    cfg, model, weights = build(POOL_KERNEL)
    print('%d tensors, %.1f M values' % (len(weights), sum(v.size for v in weights.values()) / 1e6))
    if args.print_checksums:
        for k in ('backbone.stem.conv1.weight', 'backbone.res5.2.conv3.norm.running_var',
                  'sem_seg_head.predictor.bias'):
            print('  %s sum %.9g first %r' % (k, weights[k].astype(np.float64).sum(), weights[k].flat[0]))
    gen = torch.Generator().manual_seed(52)
    img = gen_model.smooth_images(gen, 1, h, w)
    x = model.normalize(img.to(torch.float64))
    out = gen_model.run_modes(model, x, MODES)
    gen_model.spread(out)
    for m in MODES:
        for k in ('sem_logits_s4', 'center_s4', 'offset_s4'):
            v = out[m][k]
            print('  %-10s %-14s range [%.3g, %.3g] std %.3g' % (m, k, v.min().item(), v.max().item(),
                                                                v.std().item()))
    io = {'image': img.numpy()}
    for m in MODES:
        for k in ('sem_logits_s4', 'center_s4', 'offset_s4'):
            io['%s.%s' % (m, k)] = out[m][k].float().numpy()
    sl = (slice(None), slice(None), slice(SUB_OFFSET, None, SUB_STRIDE), slice(SUB_OFFSET, None, SUB_STRIDE))
    for k in ('sem_logits', 'center', 'offset'):
        io['none.%s_sub' % k] = out['none'][k][sl].float().numpy()
    meta = {'generator': GENERATOR, 'config': CONFIG, 'size': '%dx%d' % SIZE,
            'pool_kernel': '%d,%d' % POOL_KERNEL, 'modes': ','.join(MODES),
            'sub': '%d,%d' % (SUB_OFFSET, SUB_STRIDE),
            'tensors': str(len(weights)), 'checksum': checksum(weights),
            'note': 'input = (image - pixel_mean) / pixel_std; weights from the generator '
                    '(tests/golden/gen_r52.py); *_sub = full resolution at rows/cols sub[0]::sub[1]'}
    stio.save(args.out, io, meta)
    size = os.path.getsize(args.out)
    print('wrote %s (%d B)' % (args.out, size))
    assert size < 400000, 'fixture too large'
    return 0


if __name__ == '__main__':
    sys.exit(main())
