#!/usr/bin/python3
"""Golden fixture for the drift score (core/calib/drift.h), from PyTorch.

  /usr/bin/python3 tests/golden/gen_drift.py      # writes tests/golden/fixtures/drift.safetensors

Contents:
  chan.mean_t, chan.var_t, chan.mean_s, chan.var_s  F32 [64]  per-channel statistics, including
                                   equal statistics, a zero and a tiny variance, a large mean gap
  chan.d                          F32 [64]  D = (KL(t||s) + KL(s||t)) / 2 between
                                   N(mean_t, var_t + eps) and N(mean_s, var_s + eps), eps = 1e-5,
                                   from torch.distributions (not from the closed form drift.c uses)
  <mode>.drift                    F32 [2]   the whole tiny-test network's score for the two images of
                                   model_tiny_io.safetensors, mode in none, tbn, manual (m = 0.3),
                                   instcal-u, instcal-c: the mean over every BN layer of the mean over
                                   channels of D, with the BN input's instance statistics (unbiased
                                   variance over H x W) measured in float64 during that mode's forward
"""
import json
import os
import sys

import numpy as np
import torch
from torch.distributions import Normal, kl_divergence

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pdl_torch  # noqa: E402
import stio  # noqa: E402

FIX = os.path.join(HERE, 'fixtures')
EPS = 1e-5
MODES = ('none', 'tbn', 'manual', 'instcal-u', 'instcal-c')
MANUAL_M = 0.3


def sym_kl(mean_t, var_t, mean_s, var_s, eps):
    p = Normal(mean_t, torch.sqrt(var_t + eps))
    q = Normal(mean_s, torch.sqrt(var_s + eps))
    return 0.5 * (kl_divergence(p, q) + kl_divergence(q, p))


def channel_vectors():
    g = torch.Generator().manual_seed(1302)
    n = 64
    mean_s = torch.randn(n, generator=g, dtype=torch.float64) * 2
    var_s = torch.exp(torch.randn(n, generator=g, dtype=torch.float64) * 1.5)
    mean_t = mean_s + torch.randn(n, generator=g, dtype=torch.float64) * var_s.sqrt()
    var_t = var_s * torch.exp(torch.randn(n, generator=g, dtype=torch.float64))
    mean_t[0], var_t[0] = mean_s[0], var_s[0]          # identical: D = 0
    var_t[1] = 0.0                                      # a constant channel in this image
    var_s[2] = 1e-7                                     # a near-dead channel in the source
    mean_t[3] = mean_s[3] + 50.0                        # a large mean gap
    var_t[4], var_s[4] = 0.0, 0.0                       # both constant: only the mean gap counts
    t = {k: v.float().double() for k, v in
         (('mean_t', mean_t), ('var_t', var_t), ('mean_s', mean_s), ('var_s', var_s))}
    d = sym_kl(t['mean_t'], t['var_t'], t['mean_s'], t['var_s'], EPS)
    assert d[0].abs() < 1e-12 and torch.isfinite(d).all()
    out = {'chan.' + k: v.numpy() for k, v in t.items()}
    out['chan.d'] = d.numpy()
    return out


def model_scores():
    w, meta = stio.load(os.path.join(FIX, 'model_tiny_weights.safetensors'))
    io, _ = stio.load(os.path.join(FIX, 'model_tiny_io.safetensors'))
    model = pdl_torch.load_weights(pdl_torch.build_model(json.loads(meta['config'])).double(), w)
    model.set_strict_pool(True)
    x = model.normalize(torch.from_numpy(io['image'].astype(np.float64)))
    layers = []

    def hook(bn, inputs):
        u = inputs[0].detach()
        mu, var = u.mean(dim=(2, 3)), u.var(dim=(2, 3), unbiased=u.shape[2] * u.shape[3] >= 2)
        layers.append(sym_kl(mu, var, bn.running_mean[None], bn.running_var[None], bn.eps).mean(1))

    for _, bn in model.bns():
        bn.register_forward_pre_hook(hook)
    out = {}
    with torch.no_grad():
        for mode in MODES:
            layers.clear()
            model.set_calibration(mode, MANUAL_M if mode == 'manual' else None)
            model(x)
            assert len(layers) == len(model.bns())
            score = torch.stack(layers).mean(0)
            out['%s.drift' % mode] = score.numpy()
            print('  %-10s drift %s over %d BN layers' % (mode, score.numpy(), len(layers)))
    return out


def main():
    tensors = channel_vectors()
    tensors.update(model_scores())
    path = os.path.join(FIX, 'drift.safetensors')
    stio.save(path, tensors, {'eps': repr(EPS), 'modes': ','.join(MODES), 'manual_m': repr(MANUAL_M)})
    print('wrote %s (%d B)' % (path, os.path.getsize(path)))


if __name__ == '__main__':
    main()
