"""Golden whole-network gradients: the tiny model of gen_model.py, a random linear loss of its
full-resolution outputs, and PyTorch autograd (float64) for a selection of parameters in every
training mode the C trainer uses:

  train      BatchNorm with batch statistics (base-model training; differentiated through them)
  source     calibrated BN with m = 0 (stored statistics)
  instcal-u  learned per-channel strengths (instance statistics are stop-gradient, as the official code)
  instcal-c  learned MLP strengths
  tbn        m = 1 (TENT adapts gamma/beta this way)

  /usr/bin/python3 tests/golden/gen_model_grad.py   # writes fixtures/model_tiny_grad.safetensors
"""
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pdl_torch  # noqa: E402
import stio  # noqa: E402

MODES = {'train': ('train', None), 'source': ('manual', 0.0), 'instcal-u': ('instcal-u', None),
         'instcal-c': ('instcal-c', None), 'tbn': ('tbn', None)}

# A cross-section of the network: every kind of layer, both heads, both calibration kinds.
SELECT = [
    'backbone.stem.conv1.weight', 'backbone.stem.conv1.norm.weight', 'backbone.stem.conv3.norm.bias',
    'backbone.res2.0.shortcut.weight', 'backbone.res3.1.conv2.weight', 'backbone.res3.1.conv2.norm.weight',
    'backbone.res5.1.conv2.weight', 'backbone.res5.1.conv3.norm.bias',
    'sem_seg_head.decoder.res5.project_conv.convs.0.weight',
    'sem_seg_head.decoder.res5.project_conv.convs.2.depthwise.weight',
    'sem_seg_head.decoder.res5.project_conv.convs.4.1.weight',
    'sem_seg_head.decoder.res5.project_conv.convs.4.1.bias',
    'sem_seg_head.decoder.res5.project_conv.project.norm.weight',
    'sem_seg_head.decoder.res3.fuse_conv.pointwise.weight', 'sem_seg_head.decoder.res2.project_conv.weight',
    'sem_seg_head.head.depthwise.norm.weight', 'sem_seg_head.head.pointwise.weight',
    'sem_seg_head.predictor.weight', 'sem_seg_head.predictor.bias',
    'ins_embed_head.decoder.res5.project_conv.convs.1.weight', 'ins_embed_head.decoder.res2.fuse_conv.0.weight',
    'ins_embed_head.center_head.0.norm.bias', 'ins_embed_head.center_predictor.weight',
    'ins_embed_head.offset_head.1.weight', 'ins_embed_head.offset_predictor.bias',
]
CALIB = ['backbone.stem.conv1.norm', 'backbone.res3.1.conv2.norm', 'sem_seg_head.head.depthwise.norm',
         'ins_embed_head.decoder.res2.fuse_conv.1.norm']


def main():
    w, meta = stio.load(os.path.join(HERE, 'fixtures', 'model_tiny_weights.safetensors'))
    io, _ = stio.load(os.path.join(HERE, 'fixtures', 'model_tiny_io.safetensors'))
    cfg = pdl_torch.validate_config(json.loads(meta['config']))
    model = pdl_torch.build_model(cfg).double()
    model.attach_calibration()
    model.load_state_dict({k: torch.from_numpy(np.array(v)).double() for k, v in w.items()}, strict=False)
    img = torch.from_numpy(np.array(io['image'])).double()[:, :, :32, :64]  # [2,3,32,64]
    x = model.normalize(img)
    gen = torch.Generator().manual_seed(7)
    out = {}
    # The official InstCal-U projects its strengths into [eps, 1-eps] in place before every
    # forward (outside the graph); the fixture weights deliberately hold out-of-range values.
    with torch.no_grad():
        e = cfg['calibration']['clamp_eps']
        for _, bn in model.bns():
            bn.calib_mean.clamp_(e, 1 - e)
            bn.calib_var.clamp_(e, 1 - e)
    for tag, (mode, m) in MODES.items():
        model.set_calibration(mode, m)
        model.zero_grad(set_to_none=True)
        y = model(x)
        keys = ('sem_logits', 'center', 'offset')
        if tag == 'train':  # the loss weights are drawn once and shared by every mode
            r = {k: torch.rand(y[k].shape, generator=gen, dtype=torch.float64) * 2 - 1 for k in keys}
            for k in keys:
                out['r.' + k] = r[k].float()
        loss = sum((y[k] * r[k]).sum() for k in keys)
        loss.backward()
        params = dict(model.named_parameters())
        names = list(SELECT)
        if tag == 'instcal-u':
            names = [b + s for b in CALIB for s in ('.calib_mean', '.calib_var')]
        elif tag == 'instcal-c':
            names = [b + '.instcal_c.' + s for b in CALIB for s in
                     ('basis_mean', 'basis_var', 'mean_net.fc1.weight', 'var_net.fc2.weight', 'var_net.fc1.bias')]
        for n in names:
            g = params[n].grad
            if g is None:
                raise RuntimeError('no gradient for %s in mode %s' % (n, tag))
            out['%s.%s' % (tag, n)] = g.float()
        out[tag + '.loss'] = torch.tensor([loss.item()]).float()
    model.set_calibration('none')
    path = os.path.join(HERE, 'fixtures', 'model_tiny_grad.safetensors')
    stio.save(path, out, {'modes': ','.join(MODES), 'note': 'loss = sum over sem_logits, center, offset '
                          '(full resolution, both images) of output * r.<name>'})
    print('wrote', path, os.path.getsize(path), 'bytes')


if __name__ == '__main__':
    main()
