#!/usr/bin/python3
"""Generates the tiny test images used by tests/core/image/*.

Run with Debian's python3 (needs python3-numpy and python3-pil; the
arithmetic-coded JPEG also needs cjpeg from libjpeg-turbo-progs):
    /usr/bin/python3 tests/data/images/make_images.py
It rewrites every file next to this script. The pixel patterns are formulas
that the C tests recompute, so the images need no sidecar data. PNGs are
written by the small raw writer below (not PIL), which gives full control
over colour type, bit depth, tRNS and interlacing and keeps the files
independent of libpng, the library under test. JPEGs come from PIL.
"""
import os
import struct
import subprocess
import tempfile
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
W, H = 7, 5  # odd sizes exercise row strides and Adam7's partial passes


def path(name):
    return os.path.join(HERE, name)


def p8(x, y, k):
    """8-bit pattern, mirrored by p8() in tests/core/image/test_png.c."""
    return (x * 37 + y * 71 + k * 101 + 13) & 255


def p16(x, y, k):
    """16-bit pattern, mirrored by p16() in tests/core/image/test_png.c."""
    return (x * 4099 + y * 8191 + k * 12345 + 7) & 0xFFFF


def pattern(c, bits=8):
    f = p8 if bits == 8 else p16
    a = np.zeros((H, W, c), dtype=np.uint16 if bits == 16 else np.uint8)
    for y in range(H):
        for x in range(W):
            for k in range(c):
                a[y, x, k] = f(x, y, k)
    return a


def chunk(tag, data):
    body = tag + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_rows(a, bits):
    """Rows of samples (H, W, C) packed at `bits` per sample, big-endian."""
    rows = []
    for row in a:
        flat = row.reshape(-1)
        if bits == 16:
            rows.append(flat.astype(">u2").tobytes())
        elif bits == 8:
            rows.append(flat.astype(np.uint8).tobytes())
        else:
            per = 8 // bits
            out = bytearray((len(flat) * bits + 7) // 8)
            for i, v in enumerate(flat):
                out[i // per] |= int(v) << (8 - bits * (i % per + 1))
            rows.append(bytes(out))
    return rows


def write_png(name, a, color_type, bits, plte=None, trns=None, interlace=False):
    h, w = a.shape[:2]
    if a.ndim == 2:
        a = a[:, :, None]
    if interlace:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                  (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        raw = b""
        for x0, y0, dx, dy in passes:
            sub = a[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += b"".join(b"\0" + r for r in pack_rows(sub, bits))
    else:
        raw = b"".join(b"\0" + r for r in pack_rows(a, bits))
    ihdr = struct.pack(">IIBBBBB", w, h, bits, color_type, 0, 0, 1 if interlace else 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    if plte is not None:
        data += chunk(b"PLTE", bytes(np.array(plte, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        data += chunk(b"tRNS", trns)
    data += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path(name), "wb") as f:
        f.write(data)


# Palette used by pal*.png; mirrored by pal_rgb() in test_png.c.
PALETTE = [((i * 40) & 255, (255 - i * 30) & 255, (i * 90) & 255) for i in range(6)]
PAL_ALPHA = bytes([255, 0, 128])  # entries 3..5 stay opaque


def pal_index():
    return np.array([[(x + y) % 6 for x in range(W)] for y in range(H)], dtype=np.uint8)


def make_pngs():
    write_png("gray8.png", pattern(1), 0, 8)
    write_png("ga8.png", pattern(2), 4, 8)
    write_png("rgb8.png", pattern(3), 2, 8)
    write_png("rgba8.png", pattern(4), 6, 8)
    write_png("rgb8_adam7.png", pattern(3), 2, 8, interlace=True)
    g4 = np.array([[(x + 2 * y) & 15 for x in range(W)] for y in range(H)], dtype=np.uint8)
    write_png("gray4.png", g4, 0, 4)
    write_png("gray16.png", pattern(1, 16), 0, 16)
    write_png("rgb16.png", pattern(3, 16), 2, 16)
    write_png("pal.png", pal_index(), 3, 8, plte=PALETTE)
    write_png("pal_trns.png", pal_index(), 3, 8, plte=PALETTE, trns=PAL_ALPHA)
    write_png("pal4.png", pal_index(), 3, 4, plte=PALETTE)
    # RGB with a tRNS colour key equal to pixel (0, 0).
    key = struct.pack(">HHH", p8(0, 0, 0), p8(0, 0, 1), p8(0, 0, 2))
    write_png("rgb8_trns.png", pattern(3), 2, 8, trns=key)


def quad():
    """32x16: top-left red, top-right green, bottom-left blue, bottom-right
    yellow. Mirrored by QUAD_* in test_jpeg.c."""
    a = np.zeros((16, 32, 3), dtype=np.uint8)
    a[:8, :16] = (255, 0, 0)
    a[:8, 16:] = (0, 255, 0)
    a[8:, :16] = (0, 0, 255)
    a[8:, 16:] = (255, 255, 0)
    return Image.fromarray(a, "RGB")


def make_jpegs():
    q = quad()
    q.save(path("quad.jpg"), quality=95, subsampling=0)
    q.save(path("quad_prog.jpg"), quality=95, subsampling=0, progressive=True)
    ex = Image.Exif()
    ex[0x0112] = 6  # PIL writes little-endian (II) EXIF
    q.save(path("quad_exif6.jpg"), quality=95, subsampling=0, exif=ex.tobytes())
    # Smooth gradient, 4:2:0: the pixel check in test_jpeg.c uses grad_rgb().
    g = np.zeros((24, 32, 3), dtype=np.uint8)
    for y in range(24):
        for x in range(32):
            g[y, x] = (8 * x, 10 * y, 128)
    Image.fromarray(g, "RGB").save(path("grad.jpg"), quality=90)
    l = np.array([[8 * x + 4 * y for x in range(16)] for y in range(16)], dtype=np.uint8)
    Image.fromarray(l, "L").save(path("gray.jpg"), quality=95)
    Image.new("CMYK", (8, 8), (10, 20, 30, 40)).save(path("cmyk.jpg"), quality=90)
    # PIL cannot write arithmetic coding; libjpeg-turbo's cjpeg can:
    #   cjpeg -arithmetic -quality 95 -sample 1x1 -outfile quad_arith.jpg quad.ppm
    with tempfile.TemporaryDirectory() as tmp:
        ppm = os.path.join(tmp, "quad.ppm")
        q.save(ppm)
        subprocess.run(["cjpeg", "-arithmetic", "-quality", "95", "-sample", "1x1",
                        "-outfile", path("quad_arith.jpg"), ppm], check=True)


if __name__ == "__main__":
    make_pngs()
    make_jpegs()
