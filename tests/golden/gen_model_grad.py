"""Golden whole-network gradients: the tiny model of gen_model.py, a random linear loss of its
full-resolution outputs, and PyTorch autograd (float64) for a selection of parameters in every
training mode the C trainer uses:

  train      BatchNorm with batch statistics (base-model training; differentiated through them)
  source     calibrated BN with m = 0 (stored statistics)
  instcal-u  learned per-channel strengths (instance statistics are stop-gradient, as the official code)
  instcal-c  learned MLP strengths
  tbn        m = 1 (TENT adapts gamma/beta this way)
  instcal-g  gated strengths and gate (core/calib/gate.h), mixture variance

  /usr/bin/python3 tests/golden/gen_model_grad.py   # writes fixtures/model_tiny_grad.safetensors
  /usr/bin/python3 tests/golden/gen_model_grad.py --check-fd   # checks autograd by finite differences

--check-fd validates the reference itself, in float64: per mode, the autograd derivative of the
same loss along a random direction over every parameter the C trainer trains in that mode, against
the central difference (L(p + h v) - L(p - h v)) / 2h, with the instance statistics held at their
unperturbed values (they are stop-gradient) and strengths at the clamp bounds left still. The C
gradients match this reference (tests/core/model/test_pdl_grad_golden.c), so the two checks
together put the whole C network's gradients against finite differences in double.
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
         'instcal-c': ('instcal-c', None), 'tbn': ('tbn', None), 'instcal-g': ('instcal-g', None)}

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


def load_model():
    w, meta = stio.load(os.path.join(HERE, 'fixtures', 'model_tiny_weights.safetensors'))
    io, _ = stio.load(os.path.join(HERE, 'fixtures', 'model_tiny_io.safetensors'))
    cfg = pdl_torch.validate_config(json.loads(meta['config']))
    model = pdl_torch.build_model(cfg).double()
    model.attach_calibration(('instcal-u', 'instcal-c', 'instcal-g'))
    model.load_state_dict({k: torch.from_numpy(np.array(v)).double() for k, v in w.items()}, strict=False)
    # InstCal-G is not in the weights fixture: strengths U(0.2, 0.9) and gates sigmoid(k (z - t))
    # with k in [0.7, 1.5], t in [-3.5, -2.5] (z of this model's layers is about -4 to -1, so no
    # gate saturates); the C test loads the same values (g-init.*)
    gen = torch.Generator().manual_seed(15)
    with torch.no_grad():
        for _, bn in model.bns():
            p = bn.instcal_g
            p.mean.copy_(torch.rand(p.mean.shape, generator=gen, dtype=torch.float64) * 0.7 + 0.2)
            p.var.copy_(torch.rand(p.var.shape, generator=gen, dtype=torch.float64) * 0.7 + 0.2)
            k, t = torch.rand(2, generator=gen, dtype=torch.float64)
            p.gate.copy_(torch.stack([0.7 + 0.8 * k, -3.5 + t]))
    img = torch.from_numpy(np.array(io['image'])).double()[:, :, :32, :64]  # [2,3,32,64]
    x = model.normalize(img)
    # The official InstCal-U projects its strengths into [eps, 1-eps] in place before every
    # forward (outside the graph); the fixture weights deliberately hold out-of-range values.
    e = cfg['calibration']['clamp_eps']
    with torch.no_grad():
        for _, bn in model.bns():
            bn.calib_mean.clamp_(e, 1 - e)
            bn.calib_var.clamp_(e, 1 - e)
    return model, x, e


# which parameters the C trainer trains in each mode (pdl_grad_golden's kinds)
def trained(name, tag):
    calib_u = name.endswith('.calib_mean') or name.endswith('.calib_var')
    calib_c = '.instcal_c.' in name
    calib_g = '.instcal_g.' in name
    if tag == 'instcal-u':
        return calib_u
    if tag == 'instcal-c':
        return calib_c
    if tag == 'instcal-g':
        return calib_g
    return not calib_u and not calib_c and not calib_g


def check_fd(h=1e-7, tol=1e-6):
    model, x, e = load_model()
    keys = ('sem_logits', 'center', 'offset')
    gen = torch.Generator().manual_seed(11)
    tape = pdl_torch.STATS_TAPE
    worst = 0.0
    print('%-10s %8s %16s %16s %10s' % ('mode', 'params', 'autograd g.v', 'finite diff', 'rel err'))
    for tag, (mode, m) in MODES.items():
        model.set_calibration(mode, m)
        model.zero_grad(set_to_none=True)
        tape.update(mode='record', list=[], i=0)
        y = model(x)
        r = {k: torch.rand(y[k].shape, generator=gen, dtype=torch.float64) * 2 - 1 for k in keys}
        loss = sum((y[k] * r[k]).sum() for k in keys)
        loss.backward()
        tape['mode'] = 'replay'
        params = [(n, p) for n, p in model.named_parameters() if trained(n, tag) and p.grad is not None]
        v = {}
        for n, p in params:
            d = torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1
            if tag == 'instcal-u':  # strengths projected onto a bound stay there
                d[(p <= e) | (p >= 1 - e)] = 0
            v[n] = d * (p.detach().abs().mean() + 1e-3)
        gv = sum(float((p.grad * v[n]).sum()) for n, p in params)
        lv = []
        with torch.no_grad():
            for sgn in (1, -1):
                for n, p in params:
                    p.add_(sgn * h * v[n])
                tape['i'] = 0
                yy = model(x)
                lv.append(float(sum((yy[k] * r[k]).sum() for k in keys)))
                for n, p in params:
                    p.sub_(sgn * h * v[n])
        fd = (lv[0] - lv[1]) / (2 * h)
        rel = abs(fd - gv) / max(abs(gv), 1e-300)
        worst = max(worst, rel)
        print('%-10s %8d %+16.9e %+16.9e %10.2e' % (tag, sum(p.numel() for _, p in params), gv, fd, rel))
        tape.update(mode=None, list=[], i=0)
    model.set_calibration('none')
    if worst > tol:
        raise SystemExit('finite differences disagree with autograd: worst rel err %.2e' % worst)
    print('ok: worst rel err %.2e (tolerance %.0e, step %.0e)' % (worst, tol, h))


def main():
    model, x, _ = load_model()
    gen = torch.Generator().manual_seed(7)
    out = {}
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
        elif tag == 'instcal-g':
            names = [b + '.instcal_g.' + s for b in CALIB for s in ('mean', 'var', 'gate')]
            for n, p in params.items():
                if '.instcal_g.' in n:
                    out['g-init.' + n] = p.detach().float()
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
    if '--check-fd' in sys.argv[1:]:
        check_fd()
    else:
        main()
