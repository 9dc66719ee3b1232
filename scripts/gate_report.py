#!/usr/bin/env python3
"""How far InstCal-G opens, per set and per part of the network (docs/results.md).

    /usr/bin/python3 scripts/gate_report.py MODEL COUNT SET_DIR...

Runs the PyTorch reference of the network (tests/golden/pdl_torch.py, checked
against the C engine by the golden tests) in `instcal-g` mode on the first
COUNT images of each COCO-panoptic set and records, at every BN layer, the
gate g = sigmoid(k (z - t)) of each image and its mean strength
g * mean_c clamp(u, e, 1-e) (tbn's is 1, manual's is m). Prints one
Markdown row per set: the mean gate and mean strength over the images and
the layers of each part (backbone stem, res2..res5, the semantic and
instance heads), and the share of (image, layer) gates above 0.5.
It only reads the images: nothing is trained or chosen.
"""
import json
import os
import struct
import sys
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
import pdl_torch  # noqa: E402
import stio  # noqa: E402

PARTS = ("stem", "res2", "res3", "res4", "res5", "sem head", "ins head")


def part(name):
    if name.startswith("backbone."):
        p = name.split(".")[1]
        return "stem" if p == "stem" else p
    return "sem head" if name.startswith("sem_seg_head.") else "ins head"


def read_png_rgb(path):
    """8-bit RGB PNG (non-interlaced) -> uint8 array (H, W, 3)."""
    raw = open(path, "rb").read()
    if raw[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(path + ": not a PNG")
    pos, idat, hdr = 8, b"", None
    while pos < len(raw):
        (n,) = struct.unpack(">I", raw[pos:pos + 4])
        kind, data = raw[pos + 4:pos + 8], raw[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", data)
        elif kind == b"IDAT":
            idat += data
    w, h, depth, ctype, _, _, interlace = hdr
    if depth != 8 or ctype != 2 or interlace:
        raise ValueError(path + ": only 8-bit RGB, non-interlaced")
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 3 * w)
    out = np.zeros((h, 3 * w), np.int64)
    prev = np.zeros(3 * w, np.int64)
    for y in range(h):
        f, line = rows[y, 0], rows[y, 1:].astype(np.int64)
        if f == 0:
            cur = line
        elif f == 1:  # Sub: a running sum per channel
            cur = np.cumsum(line.reshape(w, 3), axis=0).reshape(-1) % 256
        elif f == 2:
            cur = (line + prev) % 256
        else:  # Average, Paeth: byte by byte
            cur = np.zeros_like(line)
            for x in range(3 * w):
                a = cur[x - 3] if x >= 3 else 0
                b = prev[x]
                c = prev[x - 3] if x >= 3 else 0
                if f == 3:
                    pred = (a + b) // 2
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (line[x] + pred) % 256
        out[y] = cur
        prev = cur
    return out.reshape(h, w, 3).astype(np.uint8)


def load_model(path):
    tensors, meta = stio.load(path)
    model = pdl_torch.build_model(json.loads(meta["config"]))
    model.attach_calibration(("instcal-g",))
    pdl_torch.load_weights(model, {k: v for k, v in tensors.items()
                                   if ".calib_" not in k and ".instcal_c." not in k},
                           strict=True)
    model.set_calibration("instcal-g")
    return model


def main(argv):
    if len(argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    torch.set_num_threads(1)
    model = load_model(argv[1])
    count = int(argv[2])
    bns = model.bns()
    rec = []

    def hook(name, bn):
        def f(mod, inp, out):
            x = inp[0]
            mu_t, var_t = pdl_torch.instance_stats(x)
            z = pdl_torch.drift_log(mu_t, var_t, bn.running_mean[None], bn.running_var[None])
            k, t = bn.instcal_g.gate.detach()
            g = torch.sigmoid(k * (z - t))
            e = bn.clamp_eps
            u = 0.5 * (bn.instcal_g.mean.detach().clamp(e, 1 - e).mean()
                       + bn.instcal_g.var.detach().clamp(e, 1 - e).mean())
            rec.append((part(name), float(g.mean()), float(g.mean() * u)))
        return f

    for name, bn in bns:
        bn.register_forward_hook(hook(name, bn))
    print("| set | " + " | ".join(PARTS) + " | all layers | gates > 0.5 |")
    print("|---|" + "---|" * (len(PARTS) + 2))
    for d in argv[3:]:
        files = sorted(os.listdir(os.path.join(d, "images")))[:count]
        rec.clear()
        with torch.no_grad():
            for fn in files:
                img = read_png_rgb(os.path.join(d, "images", fn))
                x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
                model(model.normalize(x))
        cells = []
        for p in PARTS + ("all",):
            r = [v for v in rec if p in ("all", v[0])]
            cells.append("%.2f / %.2f" % (np.mean([v[1] for v in r]), np.mean([v[2] for v in r])))
        share = np.mean([v[1] > 0.5 for v in rec])
        print("| %s | %s | %.0f%% |" % (os.path.basename(d.rstrip("/")), " | ".join(cells), 100 * share))
        sys.stdout.flush()
    print("\nCells: mean gate g / mean strength g * u over %d images and the part's layers "
          "(tbn: 1 / 1)." % count)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
