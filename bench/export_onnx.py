#!/usr/bin/python3
"""Builds one random-weight Panoptic-DeepLab and writes it twice, for the C engine and for ONNX
Runtime, so that `bench/run_model_bench.sh` times the same network, weights and input on both.

  /usr/bin/python3 bench/export_onnx.py --config cityscapes-r52-dsconv --size 512x1024 \
      --pool-kernel 32,64 --out /tmp/ic-bench/r52

writes (never commit these: the R-52 weights are ~310 MB)
  OUT.weights.safetensors  detectron2 names + InstCal-U/C tensors, config in __metadata__["config"]
                           (what `instcal bench model --model` loads)
  OUT.onnx                 the same network in `none` mode (eval BN), opset 13, fixed input size,
                           outputs sem [1,K,H,W], center [1,1,H,W], offset [1,2,H,W] at input
                           resolution (the x4 bilinear upsampling and the x4 offset scaling
                           included), i.e. exactly what ic_pdl_forward() returns with flags 0
  OUT.input.f32            the normalised input image, raw little-endian float32 [1,3,H,W]
  OUT.torch.f32            PyTorch's float64 outputs (rounded to float32) sem|center|offset
                           concatenated, a third opinion when C and ORT disagree

Weights and BN statistics come from tests/golden/gen_model.py (same helpers as the golden tests),
so the calibration modes have non-trivial tensors to run with.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, '..'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'golden'))
import gen_model  # noqa: E402
import pdl_torch  # noqa: E402
import stio  # noqa: E402


class FullRes(torch.nn.Module):
    """Returns only the full-resolution outputs, so the ONNX graph does the work the C forward
    does (heads, x4 upsampling, offsets x4) and nothing else; the stride-4 maps the reference
    model also returns would otherwise become extra graph outputs."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        o = self.model(x)
        return o['sem_logits'], o['center'], o['offset']


def config_path(name):
    if os.path.exists(name):
        return name
    return os.path.join(pdl_torch.CONFIG_DIR, name + '.json')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--config', default='cityscapes-r52-dsconv', help='config name in models/configs or a path')
    ap.add_argument('--size', default='512x1024', help='HxW of the fixed input')
    ap.add_argument('--pool-kernel', default=None,
                    help='ASPP AvgPool kernel a,b (default: the config\'s); 32,64 for R-52 at 512x1024')
    ap.add_argument('--out', required=True, help='output prefix')
    ap.add_argument('--seed', type=int, default=7)
    ap.add_argument('--opset', type=int, default=13)
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    h, w = (int(v) for v in args.size.lower().split('x'))
    pk = tuple(int(v) for v in args.pool_kernel.split(',')) if args.pool_kernel else None
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)

    cfg, model, img = gen_model.build(config_path(args.config), args.seed, 1, h, w, pool_kernel=pk)
    # The C engine's relaxed pooling rule (pdl_torch.aspp_pool_kernel), so that e.g. the tiny
    # config's 3x2 kernel runs at any size; identical to detectron2's where detectron2 runs.
    model.set_strict_pool(False)
    x64 = model.normalize(img.to(torch.float64))
    # The float32 input both runtimes read; the reference runs on the same rounded values.
    x32 = x64.float()
    with torch.no_grad():
        model.set_calibration('none')
        ref = model(x32.double())
    stio.save(args.out + '.weights.safetensors', gen_model.weights_dict(model),
              {'config': json.dumps(cfg, separators=(',', ':')), 'format': 'instcal-pdl-weights'})
    x32.numpy().astype('<f4').tofile(args.out + '.input.f32')
    np.concatenate([ref[k].float().numpy().ravel() for k in ('sem_logits', 'center', 'offset')]) \
        .astype('<f4').tofile(args.out + '.torch.f32')

    # ONNX: float32, eval-mode BN (mode none). Constant folding leaves BatchNormalization nodes
    # that ORT's graph optimiser fuses into the convs, as the C engine folds BN for `none`.
    fm = FullRes(model.float()).eval()  # eval on the wrapper too: export restores its mode recursively
    with torch.no_grad():
        torch.onnx.export(fm, (x32,), args.out + '.onnx', opset_version=args.opset,
                          input_names=['x'], output_names=['sem', 'center', 'offset'],
                          do_constant_folding=True)
        o32 = fm(x32)
    # float32 torch vs float64 torch: the size of honest rounding differences at this depth
    for name, a, k in zip(('sem', 'center', 'offset'), o32, ('sem_logits', 'center', 'offset')):
        b = ref[k].float()
        print('  torch f32 vs f64 %-6s max rel err %.2e' % (name, ((a - b).abs().max() / b.abs().max()).item()))
    nparam = sum(v.size for v in gen_model.weights_dict(model).values())
    print('wrote %s.{weights.safetensors,onnx,input.f32,torch.f32}: %s %dx%d, %.1fM weights+calibration floats'
          % (args.out, cfg['name'], h, w, nparam / 1e6))
    print('shape sem 1x%dx%dx%d center 1x1x%dx%d offset 1x2x%dx%d'
          % (cfg['sem_seg_head']['num_classes'], h, w, h, w, h, w))
    return 0


if __name__ == '__main__':
    sys.exit(main())
