#!/usr/bin/python3
"""Golden fixtures for the whole Panoptic-DeepLab network (tiny-test config) and, optionally, a
random-weight R-52-DSConv check at small input.

  /usr/bin/python3 tests/golden/gen_model.py                  # writes the committed tiny fixtures
  /usr/bin/python3 tests/golden/gen_model.py --r52 OUT_PREFIX [--size 128x256] [--pool-kernel 4,8]
        # writes OUT_PREFIX.weights.safetensors (~120 MB) + OUT_PREFIX.io.safetensors (not committed)

Fixtures (tests/golden/fixtures/):
  model_tiny_weights.safetensors  detectron2 names (no num_batches_tracked) + <bn>.calib_mean/var
                                  + <bn>.instcal_c.*; __metadata__: config (JSON), manual_m
  model_tiny_io.safetensors       image U8 [2,3,48,96] (RGB 0..255); for every mode M in
                                  none, tbn, manual, instcal-u, instcal-c:
                                    M.sem_logits_s4 [2,K,12,24], M.center_s4 [2,1,12,24],
                                    M.offset_s4 [2,2,12,24] (stride-4 units, before x4);
                                  plus full resolution for image 0, mode none:
                                    none.sem_logits [1,K,48,96], none.center [1,1,48,96],
                                    none.offset [1,2,48,96] (x4 bilinear, offset values x4)
                                  __metadata__: modes, manual_m, note.
Every mode is per image, so image 0 of the batch-2 run equals a batch-1 run of image 0.
The reference is computed in float64 from float32-rounded weights and from the normalised
image ((img - pixel_mean) / pixel_std); outputs are stored as float32.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pdl_torch  # noqa: E402
import stio  # noqa: E402

MODES = ('none', 'tbn', 'manual', 'instcal-u', 'instcal-c')
MANUAL_M = 0.3


def smooth_images(gen, n, h, w):
    """Plausible-looking RGB 0..255 images: smooth colour fields + edges + a little noise."""
    low = torch.rand(n, 3, max(h // 8, 1), max(w // 8, 1), generator=gen, dtype=torch.float64)
    img = F.interpolate(low, size=(h, w), mode='bilinear', align_corners=False) * 200 + 20
    # a few axis-aligned blocks ("objects")
    for i in range(n):
        for _ in range(3):
            y0 = int(torch.randint(0, h - 4, (1,), generator=gen))
            x0 = int(torch.randint(0, w - 4, (1,), generator=gen))
            y1 = y0 + int(torch.randint(4, max(5, h // 2), (1,), generator=gen))
            x1 = x0 + int(torch.randint(4, max(5, w // 2), (1,), generator=gen))
            img[i, :, y0:y1, x0:x1] = torch.rand(3, 1, 1, generator=gen, dtype=torch.float64) * 255
    img = img + torch.randn(img.shape, generator=gen, dtype=torch.float64) * 8
    # per-image brightness change so the two images differ in statistics (domain shift)
    img[-1] = img[-1] * 0.6 + 10
    return img.clamp(0, 255).round().to(torch.uint8)


def randomize(model, gen, calib_img):
    """Random weights; BN running stats from data (batch stats of calib_img) then perturbed."""
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, pdl_torch.Conv2d):
                fan_in = mod.weight.shape[1] * mod.weight.shape[2] * mod.weight.shape[3]
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen, dtype=torch.float64)
                                 * math.sqrt(2.0 / fan_in))
                if mod.bias is not None:
                    mod.bias.copy_(torch.randn(mod.bias.shape, generator=gen, dtype=torch.float64) * 0.1)
            elif isinstance(mod, pdl_torch.CalibBN):
                c = mod.num_features
                mod.weight.copy_(0.5 + torch.rand(c, generator=gen, dtype=torch.float64))
                mod.bias.copy_(torch.randn(c, generator=gen, dtype=torch.float64) * 0.2)
        model.set_calibration('collect')
        model(model.normalize(calib_img.to(torch.float64)))
        for _, bn in model.bns():
            c = bn.num_features
            sd = bn.running_var.clamp(min=1e-4).sqrt()
            bn.running_mean.add_(0.2 * sd * torch.randn(c, generator=gen, dtype=torch.float64))
            bn.running_var.copy_(bn.running_var.clamp(min=1e-4)
                                 * torch.exp(0.3 * torch.randn(c, generator=gen, dtype=torch.float64)))
            bn.num_batches_tracked.fill_(0)
        model.set_calibration('none')


def randomize_calibration(model, gen):
    with torch.no_grad():
        for _, bn in model.bns():
            c = bn.num_features
            bn.calib_mean.copy_(torch.rand(c, generator=gen, dtype=torch.float64) * 0.98 + 0.01)
            bn.calib_var.copy_(torch.rand(c, generator=gen, dtype=torch.float64) * 0.98 + 0.01)
            if c >= 4:  # exercise the clamp to [eps, 1-eps]
                bn.calib_mean[0] = -0.25
                bn.calib_var[1] = 1.5
            p = bn.instcal_c
            p.basis_mean.copy_(torch.randn(p.basis_mean.shape, generator=gen, dtype=torch.float64) * 0.3)
            p.basis_var.copy_(torch.randn(p.basis_var.shape, generator=gen, dtype=torch.float64) * 0.3)
            for net in (p.mean_net, p.var_net):
                for fc in (net.fc1, net.fc2):
                    fc.weight.copy_(torch.randn(fc.weight.shape, generator=gen, dtype=torch.float64)
                                    / math.sqrt(fc.weight.shape[1]))
                    fc.bias.copy_(torch.randn(fc.bias.shape, generator=gen, dtype=torch.float64) * 0.1)


def round_to_f32(model):
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.float().double())


def weights_dict(model):
    return {k: v.detach().float().numpy() for k, v in model.state_dict().items()
            if not k.endswith('num_batches_tracked')}


def run_modes(model, x, modes=MODES):
    out = {}
    with torch.no_grad():
        for mode in modes:
            model.set_calibration(mode, MANUAL_M if mode == 'manual' else None)
            out[mode] = model(x)
            for k, v in out[mode].items():
                if not torch.isfinite(v).all():
                    raise RuntimeError('non-finite output %s/%s' % (mode, k))
    model.set_calibration('none')
    return out


def build(cfg_path, seed, n, h, w, pool_kernel=None, calib=('instcal-u', 'instcal-c')):
    cfg = pdl_torch.load_config(cfg_path)
    if pool_kernel is not None:
        for hn in ('sem_seg_head', 'ins_embed_head'):
            cfg[hn]['aspp_pooling'] = {'type': 'avg', 'kernel': list(pool_kernel)}
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = pdl_torch.build_model(cfg).double()
    # both kinds always attached so the random stream (and the fixtures) do not depend on `calib`
    model.attach_calibration()
    randomize(model, gen, smooth_images(gen, 2, h, w))
    randomize_calibration(model, gen)
    for _, bn in model.bns():
        if 'instcal-u' not in calib:
            del bn.calib_mean, bn.calib_var
        if 'instcal-c' not in calib:
            del bn.instcal_c
    round_to_f32(model)
    model.set_strict_pool(True)  # fixtures only use sizes detectron2 accepts
    img = smooth_images(gen, n, h, w)
    return cfg, model, img


def spread(out):
    """Reports how much each mode differs from none (a fixture where modes coincide is useless)."""
    base = out['none']['sem_logits_s4']
    for m, o in out.items():
        d = (o['sem_logits_s4'] - base).abs().max().item()
        print('  %-10s |sem_s4| max %.3g  diff vs none %.3g  center range [%.3g, %.3g]'
              % (m, o['sem_logits_s4'].abs().max().item(), d, o['center_s4'].min().item(),
                 o['center_s4'].max().item()))


def gen_tiny(out_dir):
    cfg_path = os.path.join(pdl_torch.CONFIG_DIR, 'tiny-test.json')
    cfg, model, img = build(cfg_path, 20240601, 2, 48, 96)
    x = model.normalize(img.to(torch.float64))
    out = run_modes(model, x)
    spread(out)
    cfg_json = json.dumps(cfg, separators=(',', ':'))
    wpath = os.path.join(out_dir, 'model_tiny_weights.safetensors')
    stio.save(wpath, weights_dict(model), {'config': cfg_json, 'manual_m': repr(MANUAL_M),
                                            'format': 'instcal-pdl-weights'})
    io = {'image': img.numpy()}
    for m in MODES:
        for k in ('sem_logits_s4', 'center_s4', 'offset_s4'):
            io['%s.%s' % (m, k)] = out[m][k].float().numpy()
    for k in ('sem_logits', 'center', 'offset'):
        io['none.%s' % k] = out['none'][k][:1].float().numpy()
    iopath = os.path.join(out_dir, 'model_tiny_io.safetensors')
    stio.save(iopath, io, {'modes': ','.join(MODES), 'manual_m': repr(MANUAL_M),
                           'note': 'input = (image - pixel_mean) / pixel_std; full-res outputs are for image 0'})
    total = os.path.getsize(wpath) + os.path.getsize(iopath)
    print('wrote %s (%d B), %s (%d B), total %d B'
          % (wpath, os.path.getsize(wpath), iopath, os.path.getsize(iopath), total))
    assert total < 600000, 'fixtures too large'
    # round trip: reloading the saved weights into a fresh model reproduces the outputs
    w, meta = stio.load(wpath)
    m2 = pdl_torch.load_weights(pdl_torch.build_model(json.loads(meta['config'])).double(), w)
    o2 = run_modes(m2, x, ('none', 'instcal-c'))
    for mode in ('none', 'instcal-c'):
        assert torch.equal(o2[mode]['sem_logits_s4'], out[mode]['sem_logits_s4']), mode


def gen_r52(prefix, size, pool_kernel, cfg_name, modes):
    h, w = size
    cfg, model, img = build(os.path.join(pdl_torch.CONFIG_DIR, cfg_name + '.json'), 7, 1, h, w,
                            pool_kernel=pool_kernel, calib=[m for m in modes if m.startswith('instcal')])
    x = model.normalize(img.to(torch.float64))
    out = run_modes(model, x, modes)
    spread(out)
    stio.save(prefix + '.weights.safetensors', weights_dict(model),
              {'config': json.dumps(cfg, separators=(',', ':')), 'manual_m': repr(MANUAL_M),
               'format': 'instcal-pdl-weights'})
    io = {'image': img.numpy()}
    for m in modes:
        for k in ('sem_logits', 'center', 'offset'):
            io['%s.%s' % (m, k)] = out[m][k].float().numpy()
    stio.save(prefix + '.io.safetensors', io, {'modes': ','.join(modes), 'manual_m': repr(MANUAL_M),
                                               'note': 'input = (image - pixel_mean) / pixel_std'})
    print('wrote %s.weights.safetensors, %s.io.safetensors' % (prefix, prefix))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out-dir', default=os.path.join(HERE, 'fixtures'))
    ap.add_argument('--r52', metavar='OUT_PREFIX', help='write the slow R-52 check instead of the tiny fixtures')
    ap.add_argument('--config', default='cityscapes-r52-dsconv', help='config name for --r52')
    ap.add_argument('--size', default='128x256', help='HxW for --r52 (multiple of 16)')
    ap.add_argument('--pool-kernel', default='4,8',
                    help='ASPP pool kernel for --r52 (the 32,64 training kernel needs 512x1024 input)')
    ap.add_argument('--modes', default=','.join(MODES),
                    help='modes for --r52; without instcal-c the weights file is ~120 MB instead of ~310 MB')
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    if args.r52:
        h, w = (int(v) for v in args.size.lower().split('x'))
        k = tuple(int(v) for v in args.pool_kernel.split(','))
        gen_r52(args.r52, (h, w), k, args.config, [m for m in args.modes.split(',') if m])
    else:
        os.makedirs(args.out_dir, exist_ok=True)
        gen_tiny(args.out_dir)
    return 0


if __name__ == '__main__':
    sys.exit(main())
