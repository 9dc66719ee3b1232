"""Golden fixtures for core/ops/conv2d.c, computed by torch.nn.functional.conv2d.

Writes tests/golden/fixtures/conv.safetensors. Each case <name> holds
<name>.x (N, cin, H, W), <name>.w (cout, cin/groups, kh, kw), optionally
<name>.b (cout), <name>.y (N, cout, OH, OW) and <name>.params, an int32 vector
[cin, cout, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups, relu]
so the C test needs no copy of the table below. The reference is computed in
float64 and stored as float32, so it is the exact answer to float32 rounding.

Run: /usr/bin/python3 tests/golden/gen_conv.py
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402

# name: (N, cin, cout, H, W, (kh, kw), (sh, sw), (ph, pw), (dh, dw), groups, bias, relu)
CASES = {
    'k3_s2_d2': (1, 4, 6, 13, 17, (3, 3), (2, 2), (2, 2), (2, 2), 1, True, False),
    'k3_p1_relu': (2, 3, 5, 8, 8, (3, 3), (1, 1), (1, 1), (1, 1), 1, True, True),
    'groups2': (2, 6, 4, 9, 11, (3, 3), (1, 1), (1, 1), (1, 1), 2, False, False),
    'dw3_d2': (1, 8, 8, 10, 12, (3, 3), (1, 1), (2, 2), (2, 2), 8, True, False),
    'dw5': (2, 5, 5, 11, 9, (5, 5), (1, 1), (2, 2), (1, 1), 5, False, True),
    'dw3_s2': (1, 4, 4, 9, 7, (3, 3), (2, 2), (1, 1), (1, 1), 4, True, False),
    'k1_spatial1': (2, 16, 8, 1, 1, (1, 1), (1, 1), (0, 0), (1, 1), 1, True, True),
    'k3_spatial1': (1, 6, 4, 1, 1, (3, 3), (1, 1), (1, 1), (1, 1), 1, False, False),
    'k1': (2, 12, 7, 7, 5, (1, 1), (1, 1), (0, 0), (1, 1), 1, True, False),
    'k1_s2': (1, 8, 16, 9, 6, (1, 1), (2, 2), (0, 0), (1, 1), 1, False, False),
    'k5x3_mixed': (2, 3, 4, 12, 7, (5, 3), (2, 1), (2, 1), (1, 2), 1, True, False),
    'k7_s2_p3': (1, 3, 8, 15, 20, (7, 7), (2, 2), (3, 3), (1, 1), 1, False, False),
    'dw_mult2': (1, 3, 6, 6, 7, (3, 3), (1, 1), (1, 1), (1, 1), 3, True, False),
}


def main():
    torch.manual_seed(20240611)
    out = {}
    for name, (n, cin, cout, h, w, k, s, p, d, g, bias, relu) in CASES.items():
        x = torch.randn(n, cin, h, w, dtype=torch.float64)
        wt = torch.randn(cout, cin // g, *k, dtype=torch.float64) / np.sqrt(cin // g * k[0] * k[1])
        b = torch.randn(cout, dtype=torch.float64) if bias else None
        # round inputs to float32 first so that C and the reference see the same numbers
        x, wt = x.float().double(), wt.float().double()
        if b is not None:
            b = b.float().double()
        y = F.conv2d(x, wt, b, stride=s, padding=p, dilation=d, groups=g)
        if relu:
            y = F.relu(y)
        out[name + '.x'] = x.float()
        out[name + '.w'] = wt.float()
        if b is not None:
            out[name + '.b'] = b.float()
        out[name + '.y'] = y.float()
        out[name + '.params'] = np.array([cin, cout, k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1],
                                          g, int(relu)], dtype=np.int32)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'conv.safetensors')
    stio.save(path, out, metadata={'generator': 'tests/golden/gen_conv.py',
                                   'torch': torch.__version__})
    print(path, os.path.getsize(path), 'bytes')


if __name__ == '__main__':
    main()
