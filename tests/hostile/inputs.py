#!/usr/bin/env python3
"""Hostile image and label inputs (issue 17): decompression bombs that cost
no pixels (PNG text chunks, image data after the last row, a progressive
JPEG of thousands of scans), labels read at their true bit depth, limits on
label_segments checked before inference, error messages composed once, and
a large image whose scratch memory goes back after the request.

Each case asserts the status, how long the answer took (bounds scaled by
HOSTILE_SLOWDOWN) and the daemon's memory afterwards; the case runner then
checks that a good image is still served. Run by run.sh against the daemon
of hostile.py (max_pixels 4000000, max_upload_bytes 4M, one worker,
worker_memory_keep 32M). Usage: H_PORT=.. H_PID=.. [H_ADMIN_PORT=..] inputs.py
"""
import http.client, json, struct, threading, time, zlib

from hlib import HONEST, PORT, RSS_SLACK_MB, SLOW, case, nfds, rss_kb, run_all, wait_baseline

FAST_S = 2.0  # a decode that costs no pixels answers well inside this
KEEP_MB = 32  # run.sh: worker_memory_keep


def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


def png(w, h, color_type=2, depth=8, rows=None, extra=b"", zeros_mib=0):
    """A PNG: `extra` chunks before IDAT, `zeros_mib` MiB of deflated zeros
    after the rows in the same valid zlib stream (a full flush makes every
    MiB the same ~1 KB, so gigabytes cost nothing to send)."""
    ch = {0: 1, 2: 3}[color_type] * depth // 8
    if rows is None:
        rows = b"".join(b"\0" + bytes((x * 37 + y * 11) & 0xFF for x in range(w * ch)) for y in range(h))
    if zeros_mib:
        co, mib = zlib.compressobj(9), bytes(1 << 20)
        head = co.compress(rows) + co.flush(zlib.Z_FULL_FLUSH)
        rep = co.compress(mib) + co.flush(zlib.Z_FULL_FLUSH)
        adler = zlib.adler32(rows)
        for _ in range(zeros_mib):
            adler = zlib.adler32(mib, adler)
        idat = head + rep * zeros_mib + b"\x03\x00" + struct.pack(">I", adler)
    else:
        idat = zlib.compress(rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0))
            + extra + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def ztxt(n, mib=8):
    """n zTXt chunks that each inflate to `mib` MiB (8 KB each for 8 MiB)."""
    return chunk(b"zTXt", b"Comment\0\0" + zlib.compress(bytes(mib << 20), 9)) * n


def gray16(w, h, values):
    rows = b"".join(b"\0" + b"".join(struct.pack(">H", values[y * w + x]) for x in range(w)) for y in range(h))
    return png(w, h, 0, 16, rows=rows)


def progressive_jpeg(w, h, n_scans):
    """A flat gray w x h progressive JPEG of n_scans scans, built by hand: one
    interleaved DC scan (every difference 0), an AC scan per component made of
    end-of-band runs, then the luma AC scan repeated (a first pass at full
    precision, Ah = Al = 0, may be sent again). A few bytes per scan however
    large the image, and each scan costs the decoder a pass over its blocks."""
    def seg(marker, body):
        return b"\xff" + bytes([marker]) + struct.pack(">H", len(body) + 2) + body

    class Bits:
        def __init__(self):
            self.out, self.acc, self.n = bytearray(), 0, 0

        def put(self, v, n):
            for i in range(n - 1, -1, -1):
                self.acc, self.n = self.acc << 1 | (v >> i & 1), self.n + 1
                if self.n == 8:
                    self.out += b"\xff\x00" if self.acc == 0xFF else bytes([self.acc])
                    self.acc, self.n = 0, 0

        def done(self):
            if self.n:
                self.put((1 << (8 - self.n)) - 1, 8 - self.n)
            return bytes(self.out)

    blocks = ((w + 7) // 8) * ((h + 7) // 8)
    assert blocks >= 16384, "the end-of-band runs here are 16384..32767 blocks long"
    out = b"\xff\xd8" + seg(0xDB, b"\x00" + bytes([1] * 64))
    out += seg(0xC2, struct.pack(">BHHB", 8, h, w, 3) + b"".join(bytes([c, 0x11, 0]) for c in (1, 2, 3)))
    out += seg(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00")  # DC: category 0 is code '0'
    out += seg(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\xe0")  # AC: EOB14 is code '0'
    b = Bits()
    b.put(0, blocks * 3)
    out += seg(0xDA, b"\x03\x01\x00\x02\x00\x03\x00\x00\x00\x00") + b.done()

    def ac_scan(c):
        b, left = Bits(), blocks
        while left:
            run = min(left, 32767)
            if 0 < left - run < 16384:
                run = left - 16384
            b.put(0, 1)
            b.put(run - 16384, 14)
            left -= run
        return seg(0xDA, bytes([1, c, 0x00, 1, 63, 0])) + b.done()

    out += ac_scan(1) + ac_scan(2) + ac_scan(3) + ac_scan(1) * (n_scans - 4)
    return out + b"\xff\xd9"


def multipart(parts, boundary="in17bnd"):
    out = b""
    for name, value, filename in parts:
        out += b"--" + boundary.encode() + b'\r\nContent-Disposition: form-data; name="' + name.encode() + b'"'
        if filename:
            out += b'; filename="' + filename.encode() + b'"'
        out += b"\r\n\r\n" + value + b"\r\n"
    return out + b"--" + boundary.encode() + b"--\r\n", "multipart/form-data; boundary=" + boundary


def segment(body, ctype, query="?calibration=none&outputs=none", timeout=200):
    """POST /v1/segment from the honest address: (status, parsed JSON, seconds)."""
    t0 = time.time()
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout, source_address=(HONEST, 0))
    try:
        c.request("POST", "/v1/segment" + query, body=body, headers={"Content-Type": ctype})
        r = c.getresponse()
        data = r.read()
    finally:
        c.close()
    try:
        doc = json.loads(data)
    except ValueError:
        doc = {}
    return r.status, doc, time.time() - t0


def expect(st, doc, dt, want, code=None, bound=FAST_S):
    err = doc.get("error", {})
    assert st == want, "status %s, expected %s: %s" % (st, want, err or str(doc)[:200])
    if code:
        assert err.get("code") == code, "error code %s, expected %s (%s)" % (err.get("code"), code, err)
    assert dt <= bound * SLOW, "answered after %.2f s (bound %.1f s)" % (dt, bound * SLOW)
    return "%s%s in %.0f ms" % (st, " " + code if code else "", dt * 1e3)


def with_memory_check(fn):
    """Runs fn; afterwards the daemon's RSS is back within the slack."""
    def run():
        fd0, rss0 = nfds(), rss_kb()
        detail = fn()
        wait_baseline(fd0, rss0)
        return "%s; RSS %+.1f MB" % (detail, (rss_kb() - rss0) / 1024)
    run.__name__ = fn.__name__
    return run


SMALL = png(8, 8)


@case
@with_memory_check
def png_ztxt_bomb():
    # 450 zTXt chunks of 8 KB that each inflate to 8 MiB (3.6 GB of text,
    # 3.7 MB sent): libpng inflated them all (1000 of them kept a worker 67 s).
    body = png(8, 8, extra=ztxt(450))
    st, doc, dt = segment(body, "image/png")
    return expect(st, doc, dt, 200) + ", %.1f MB sent" % (len(body) / 1e6)


@case
@with_memory_check
def png_ztxt_bomb_label():
    lbl = png(8, 8, 0, 8, rows=b"".join(b"\0" + bytes([1] * 8) for _ in range(8)), extra=ztxt(400))
    body, ct = multipart([("image", SMALL, "a.png"), ("label", lbl, "l.png")])
    st, doc, dt = segment(body, ct)
    r = expect(st, doc, dt, 200)
    assert doc["metrics"]["labelled_pixels"] == 64, doc.get("metrics")
    return r


@case
@with_memory_check
def png_idat_after_rows():
    # 2 GiB of deflated zeros after an 8x8 image, in 2 MB: 16 s of inflating.
    body = png(8, 8, zeros_mib=2048)
    st, doc, dt = segment(body, "image/png")
    return expect(st, doc, dt, 200) + ", %.1f MB sent" % (len(body) / 1e6)


@case
@with_memory_check
def jpeg_5000_scans():
    # 2000x2000 (within max_pixels), 5000 scans in 150 KB: every scan is a
    # pass over 187 500 blocks (2000 scans of 4000x4000 took 17 s).
    body = progressive_jpeg(2000, 2000, 5000)
    st, doc, dt = segment(body, "image/jpeg")
    r = expect(st, doc, dt, 413, "too_large")
    assert "scans" in doc["error"]["message"], doc["error"]
    return r


@case
def label_16bit_void_and_class():
    # A 16-bit gray label: 255 (void) on the left half, class 3 on the right.
    # Scaled to 8 bits, void became class 1 and was scored, 3 became 0.
    vals = [255 if x < 4 else 3 for y in range(8) for x in range(8)]
    body, ct = multipart([("image", SMALL, "a.png"), ("label", gray16(8, 8, vals), "l.png")])
    st, doc, dt = segment(body, ct)
    r = expect(st, doc, dt, 200)
    m = doc["metrics"]
    assert m["labelled_pixels"] == 32, "labelled_pixels %s, expected 32 (half is void)" % m["labelled_pixels"]
    return r + ", labelled_pixels 32"


@case
def label_16bit_out_of_range():
    vals = [1000 if i == 5 else 2 for i in range(64)]
    body, ct = multipart([("image", SMALL, "a.png"), ("label", gray16(8, 8, vals), "l.png")])
    st, doc, dt = segment(body, ct)
    r = expect(st, doc, dt, 400, "bad_label")
    assert "1000" in doc["error"]["message"], doc["error"]
    return r


def panoptic_label():
    """8x8 RGB COCO-panoptic label: segment 1 on the top half, void below."""
    rows = b"".join(b"\0" + (bytes([1, 0, 0]) if y < 4 else bytes(3)) * 8 for y in range(8))
    return png(8, 8, rows=rows)


@case
def label_segments_over_limit():
    # 4096 entries: refused before inference as a bad label (it was a 413
    # after the whole forward, and the documented limit was a million).
    seen = []
    for n, want, code in ((4095, 200, None), (4096, 400, "bad_label")):
        segs = json.dumps([{"id": i, "category_id": i % 4} for i in range(1, n + 1)]).encode()
        body, ct = multipart([("image", SMALL, "a.png"), ("label", panoptic_label(), "l.png"),
                              ("label_segments", segs, None)])
        st, doc, dt = segment(body, ct)
        seen.append("%d entries: %s" % (n, expect(st, doc, dt, want, code)))
    return "; ".join(seen)


@case
def label_segments_nul_and_garbage():
    segs = b'[{"id": 1, "category_id": 2}]'
    seen = []
    for value, want, code in ((segs + b"\0[garbage", 400, "bad_label"), (segs, 200, None)):
        body, ct = multipart([("image", SMALL, "a.png"), ("label", panoptic_label(), "l.png"),
                              ("label_segments", value, None)])
        st, doc, dt = segment(body, ct)
        seen.append(expect(st, doc, dt, want, code))
    return ", then without the garbage ".join(seen)


@case
def gif_label_message():
    # The message was composed from itself: "label: label: ges are not supported".
    body, ct = multipart([("image", SMALL, "a.png"), ("label", b"GIF89a\1\0\1\0\0\0\0;", "l.gif")])
    st, doc, dt = segment(body, ct)
    r = expect(st, doc, dt, 400, "bad_label")
    msg = doc["error"]["message"]
    assert msg == "label: GIF images are not supported; send JPEG or PNG", repr(msg)
    return r


@case
def large_image_memory_returns():
    # A 2000x2000 image needs ~170 MB of scratch with this model; the arena
    # used to keep it for the life of the worker. So the request must first
    # take that memory (had an earlier one pinned it, the peak stays flat)
    # and then give it back.
    base = bytes(i * 3 & 255 for i in range(6256))
    img = png(2000, 2000, rows=b"".join(b"\0" + base[y % 256:y % 256 + 6000] for y in range(2000)))
    rss0, peak, stop = rss_kb(), [0], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kb())
            time.sleep(0.02)
    t = threading.Thread(target=sample)
    t.start()
    try:
        st, doc, dt = segment(img, "image/png", timeout=120)
    finally:
        stop.set()
        t.join()
    assert st == 200, "status %s: %s" % (st, doc.get("error"))
    grow, rise = (rss_kb() - rss0) / 1024, (peak[0] - rss0) / 1024
    assert rise >= 100, "RSS rose by only %+.0f MB during the request: scratch kept from before?" % rise
    assert grow <= KEEP_MB + max(24, RSS_SLACK_MB), "RSS %+.0f MB after the request (peak %+.0f MB), keep %d MB" % (
        grow, (peak[0] - rss0) / 1024, KEEP_MB)
    return "200 in %.1f s; RSS peak %+.0f MB, after %+.0f MB (keep %d MB)" % (
        dt, (peak[0] - rss0) / 1024, grow, KEEP_MB)


run_all("inputs")
