"""Golden fixtures for the forward operators other than conv (core/ops/*).

Run from anywhere with Debian's python3 (torch 1.13, numpy):
    /usr/bin/python3 tests/golden/gen_ops.py
Writes tests/golden/fixtures/ops_{bn,relu,pool,resize,concat,add,softmax}.safetensors.

Each file holds numbered cases `c<i>.<name>`; a case's integer parameters are
stored as a float tensor `c<i>.p` whose layout is documented per op below and
read by tests/core/ops/test_<op>.c. Every expected output comes from PyTorch
itself (F.batch_norm, F.max_pool2d, F.interpolate, torch.softmax, ...); only
the InstCal calibration rule, which PyTorch has no op for, is written out here
exactly as in InstCal-Pano's batch_norm.py (docs/calibration.md §1).
Shapes are small and include odd, non-square and 1x1 maps and batches > 1.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

from stio import save

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures')
torch.manual_seed(1234)


def randn(*shape, scale=1.0, shift=0.0):
    return torch.randn(*shape, dtype=torch.float32) * scale + shift


def params(*vals):
    return torch.tensor(vals, dtype=torch.float32)


# ---- bn: c<i>.p = [eps]; per case x, gamma, beta, mean, var, strengths and outputs ----

def instance_stats(x):
    hw = x.shape[2] * x.shape[3]
    mu_t = x.mean(dim=(2, 3))
    # InstCal-Pano: unbiased variance, biased (= 0) fallback for 1x1 maps
    var_t = x.var(dim=(2, 3), unbiased=hw >= 2)
    return mu_t, var_t


def calibrated_bn(x, gamma, beta, mean, var, eps, m_mu, m_var):
    """m_mu, m_var: (C,) or (N, C). The InstCal rule, scale/bias form."""
    mu_t, var_t = instance_stats(x)
    mu = (1 - m_mu) * mean + m_mu * mu_t
    v = (1 - m_var) * var + m_var * var_t
    scale = gamma * torch.rsqrt(v + eps)
    bias = beta - mu * scale
    return x * scale[:, :, None, None] + bias[:, :, None, None]


def gen_bn():
    t = {}
    shapes = [(2, 5, 7, 9), (1, 3, 1, 1), (3, 4, 5, 1), (2, 6, 4, 4), (1, 2, 1, 3)]
    for i, (n, c, h, w) in enumerate(shapes):
        p = f'c{i}.'
        # a large common offset checks that the variance does not cancel
        x = randn(n, c, h, w, scale=2.0, shift=3.0) + randn(1, c, 1, 1, scale=5.0)
        gamma = randn(c, scale=0.5, shift=1.0)
        beta = randn(c, scale=0.5)
        mean = randn(c, scale=2.0)
        var = torch.rand(c) * 3 + 0.2
        eps = 1e-5
        m_mu = torch.rand(c)
        m_var = torch.rand(c)
        mi_mu = torch.rand(n, c)
        mi_var = torch.rand(n, c)
        mu_t, var_t = instance_stats(x)
        t.update({p + 'p': params(eps), p + 'x': x, p + 'gamma': gamma, p + 'beta': beta,
                  p + 'mean': mean, p + 'var': var, p + 'mean_t': mu_t, p + 'var_t': var_t,
                  p + 'm_mu': m_mu, p + 'm_var': m_var, p + 'mi_mu': mi_mu, p + 'mi_var': mi_var})
        # m = 0 is PyTorch's own eval-mode BN, independent of the formula above
        t[p + 'y_m0'] = F.batch_norm(x, mean, var, gamma, beta, training=False, eps=eps)
        t[p + 'y_m1'] = calibrated_bn(x, gamma, beta, mean, var, eps, torch.ones(c), torch.ones(c))
        t[p + 'y_mc'] = calibrated_bn(x, gamma, beta, mean, var, eps, m_mu, m_var)
        t[p + 'y_mc_relu'] = torch.relu(t[p + 'y_mc'])
        t[p + 'y_mi'] = calibrated_bn(x, gamma, beta, mean, var, eps, mi_mu, mi_var)
    # fold: conv(3x3, pad 1, bias) -> eval BN equals the folded conv
    cin, cout = 3, 4
    x = randn(2, cin, 5, 6)
    w = randn(cout, cin, 3, 3, scale=0.3)
    b = randn(cout, scale=0.1)
    gamma, beta = randn(cout, scale=0.5, shift=1.0), randn(cout, scale=0.5)
    mean, var = randn(cout), torch.rand(cout) + 0.5
    y = F.batch_norm(F.conv2d(x, w, b, padding=1), mean, var, gamma, beta, training=False, eps=1e-5)
    t.update({'fold.x': x, 'fold.w': w, 'fold.b': b, 'fold.gamma': gamma, 'fold.beta': beta,
              'fold.mean': mean, 'fold.var': var, 'fold.y': y})
    return t


# ---- relu, add, concat ----

def gen_relu():
    x = randn(2, 3, 5, 7)
    x[0, 0, 0, :3] = 0.0
    return {'c0.x': x, 'c0.y': torch.relu(x)}


def gen_add():
    t = {}
    for i, shape in enumerate([(2, 3, 4, 5), (1, 2, 1, 1)]):
        a, b = randn(*shape), randn(*shape)
        t.update({f'c{i}.a': a, f'c{i}.b': b, f'c{i}.y': a + b, f'c{i}.y_relu': torch.relu(a + b)})
    return t


def gen_concat():
    """c<i>.x<k> inputs, c<i>.y = torch.cat(dim=1)."""
    t = {}
    cases = [[(2, 1, 5, 3), (2, 4, 5, 3), (2, 2, 5, 3)], [(3, 2, 1, 1), (3, 5, 1, 1)],
             [(1, 3, 4, 7)]]
    for i, shapes in enumerate(cases):
        xs = [randn(*s) for s in shapes]
        for k, x in enumerate(xs):
            t[f'c{i}.x{k}'] = x
        t[f'c{i}.y'] = torch.cat(xs, dim=1)
    return t


# ---- pool: c<i>.p = [type (0 max, 1 avg, 2 global), kh, kw, sh, sw, ph, pw, exclude_pad] ----

def gen_pool():
    t = {}
    cases = [
        (0, (2, 3, 9, 11), 3, 3, 2, 2, 1, 1, 0),    # ResNet stem max-pool 3/2/1
        (0, (1, 2, 1, 1), 3, 3, 2, 2, 1, 1, 0),     # 1x1 map
        (0, (1, 1, 13, 10), 7, 7, 1, 1, 3, 3, 0),   # center NMS, stride 1
        (0, (2, 2, 6, 7), 2, 3, 1, 2, 1, 1, 0),     # non-square, mixed strides
        (0, (1, 2, 8, 9), 3, 5, 1, 1, 0, 2, 0),     # stride 1, padding on one axis
        (1, (2, 3, 9, 11), 3, 3, 2, 2, 1, 1, 0),    # avg, count_include_pad=True
        (1, (2, 3, 9, 11), 3, 3, 2, 2, 1, 1, 1),    # avg, count_include_pad=False
        (1, (2, 3, 9, 13), 4, 6, 1, 1, 0, 0, 0),    # ASPP-style box filter
        (1, (1, 2, 7, 5), 5, 3, 1, 1, 2, 1, 0),     # stride 1 with padding
        (1, (1, 2, 7, 5), 5, 3, 1, 1, 2, 1, 1),
        (1, (1, 1, 1, 1), 1, 1, 1, 1, 0, 0, 0),
        (1, (1, 2, 64, 128), 32, 64, 1, 1, 0, 0, 0),  # detectron2 ASPP at 1024x2048 (33x65 out)
        (2, (2, 3, 5, 7), 0, 0, 0, 0, 0, 0, 0),
        (2, (1, 2, 1, 1), 0, 0, 0, 0, 0, 0, 0),
    ]
    for i, (kind, shape, kh, kw, sh, sw, ph, pw, excl) in enumerate(cases):
        x = randn(*shape)
        if kind == 0:
            y = F.max_pool2d(x, (kh, kw), (sh, sw), (ph, pw))
        elif kind == 1:
            y = F.avg_pool2d(x, (kh, kw), (sh, sw), (ph, pw), count_include_pad=not excl)
        else:
            y = F.adaptive_avg_pool2d(x, 1)
        t.update({f'c{i}.p': params(kind, kh, kw, sh, sw, ph, pw, excl), f'c{i}.x': x, f'c{i}.y': y})
    return t


# ---- resize: c<i>.p = [mode (0 size, 1 scale factor), out_h or scale_h, out_w or scale_w];
# scale factors are exact in float32 since c<i>.p is stored as float ----

def gen_resize():
    t = {}
    cases = [
        ((2, 3, 5, 7), 1, 4.0, 4.0),       # head output x4
        ((1, 1, 33, 65), 0, 64, 128),      # ASPP pool branch back to the res5 size
        ((1, 2, 17, 23), 0, 6, 9),         # downsample to a size
        ((1, 2, 9, 11), 1, 0.5, 0.5),      # downsample by a factor (floor)
        ((2, 2, 5, 9), 1, 1.75, 0.625),    # non-integer factors: ratio 1/s, not in/out
        ((1, 2, 1, 1), 0, 5, 3),           # 1x1 input
        ((1, 1, 1, 1), 1, 4.0, 4.0),
        ((1, 2, 6, 5), 1, 2.5, 2.5),
        ((1, 1, 3, 4), 0, 3, 8),           # one axis unchanged
        ((1, 1, 3, 4), 1, 1.25, 1.25),     # floor(in*s) == in: PyTorch copies
        ((2, 1, 8, 16), 0, 16, 32),        # decoder x2
    ]
    for i, (shape, mode, a, b) in enumerate(cases):
        x = randn(*shape)
        if mode == 0:
            y = F.interpolate(x, size=(int(a), int(b)), mode='bilinear', align_corners=False)
        else:
            y = F.interpolate(x, scale_factor=(a, b), mode='bilinear', align_corners=False)
        t.update({f'c{i}.p': params(mode, a, b), f'c{i}.x': x, f'c{i}.y': y})
    return t


# ---- softmax: c<i>.x, y (softmax), label (float), maxprob, entropy ----

def gen_softmax():
    t = {}
    cases = [((2, 5, 3, 7), 'randn'), ((1, 19, 13, 23), 'randn'), ((1, 1, 2, 2), 'randn'),
             ((3, 4, 1, 1), 'randn'), ((2, 6, 5, 5), 'ties'), ((1, 3, 4, 4), 'large')]
    for i, (shape, kind) in enumerate(cases):
        if kind == 'ties':   # small integers: many equal maxima per pixel
            x = torch.randint(0, 3, shape).float()
        elif kind == 'large':  # logits far from 0 check the max subtraction
            x = randn(*shape, scale=30.0, shift=500.0)
        else:
            x = randn(*shape, scale=3.0)
        p = torch.softmax(x, dim=1)
        logp = torch.log_softmax(x, dim=1)
        t.update({f'c{i}.x': x, f'c{i}.y': p,
                  f'c{i}.label': x.argmax(dim=1).float(),
                  f'c{i}.maxprob': p.max(dim=1).values,
                  f'c{i}.entropy': -(p * logp).sum(dim=1)})
    return t


def main():
    os.makedirs(OUT, exist_ok=True)
    gens = {'bn': gen_bn, 'relu': gen_relu, 'add': gen_add, 'concat': gen_concat,
            'pool': gen_pool, 'resize': gen_resize, 'softmax': gen_softmax}
    total = 0
    for name, gen in gens.items():
        path = os.path.join(OUT, f'ops_{name}.safetensors')
        save(path, gen(), metadata={'generator': 'tests/golden/gen_ops.py',
                                    'torch': torch.__version__})
        total += os.path.getsize(path)
        print(f'{path}: {os.path.getsize(path)} bytes')
    print(f'total {total} bytes')


if __name__ == '__main__':
    main()
