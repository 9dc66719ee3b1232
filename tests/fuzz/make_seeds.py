#!/usr/bin/env python3
"""Writes the committed seed corpora of tests/fuzz (run from anywhere).

Seeds are small valid and near-valid inputs for each target, built from the
test images in tests/data/images and the safetensors fixtures, plus hostile
headers (huge dimensions, 0x0, truncated streams). Re-running rewrites the
same files, so the corpus stays reproducible."""
import base64, json, os, struct, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
IMG = os.path.join(ROOT, "tests", "data", "images")
FIX = os.path.join(ROOT, "tests", "golden", "fixtures")


def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


def png(w, h, color_type=2, depth=8, rows=None, claim=None, extra=b"", zeros_mib=0):
    """A PNG; `claim` = (w, h) written into IHDR instead of the real size;
    `extra` = chunks before IDAT; `zeros_mib` MiB of deflated zeros after the
    rows in the same (valid) zlib stream, about 1 KB each."""
    ch = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    bpp = ch * depth // 8
    if rows is None:
        rows = b"".join(b"\0" + bytes((x * 37 + y * 11) & 0xFF for x in range(w * bpp)) for y in range(h))
    cw, chh = claim or (w, h)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", cw, chh, depth, color_type, 0, 0, 0))
    if color_type == 3:
        out += chunk(b"PLTE", bytes(range(48)))
    if zeros_mib:
        # A full flush resets the compressor, so every MiB after it deflates
        # to the same bytes; the Adler-32 is computed over all of them.
        co, mib = zlib.compressobj(9), bytes(1 << 20)
        head = co.compress(rows) + co.flush(zlib.Z_FULL_FLUSH)
        rep = co.compress(mib) + co.flush(zlib.Z_FULL_FLUSH)
        adler = zlib.adler32(rows)
        for _ in range(zeros_mib):
            adler = zlib.adler32(mib, adler)
        idat = head + rep * zeros_mib + b"\x03\x00" + struct.pack(">I", adler)
    else:
        idat = zlib.compress(rows)
    return out + extra + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def ztxt_chunks(n, mib):
    """n zTXt chunks that each inflate to `mib` MiB (about 1 KB per MiB)."""
    return chunk(b"zTXt", b"Comment\0\0" + zlib.compress(bytes(mib << 20), 9)) * n


def jpeg_scans(path, n):
    """quad_prog.jpg (a 10-scan progressive file) with scans added until it
    has n: copies of its second scan (luma AC 1-5, an all-zero band) as a
    first pass at full precision, which libjpeg accepts again and again."""
    b = open(path, "rb").read()
    dht, sos = b[259:281], b[281:292]
    assert dht[:2] == b"\xff\xc4" and sos[:2] == b"\xff\xda"
    rep = dht + sos[:9] + b"\x00" + sos[10:]  # Ah = Al = 0
    return b[:-2] + rep * (n - 10) + b[-2:]


def jpeg_claim(path, w, h):
    """The JPEG at path with its SOF dimensions replaced."""
    b = bytearray(open(path, "rb").read())
    i = 2
    while i + 4 < len(b):
        marker, ln = b[i + 1], struct.unpack(">H", b[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            b[i + 5:i + 9] = struct.pack(">HH", h, w)
            return bytes(b)
        i += 2 + ln
    return bytes(b)


def write(d, name, data):
    os.makedirs(os.path.join(HERE, "corpus", d), exist_ok=True)
    with open(os.path.join(HERE, "corpus", d, name), "wb") as f:
        f.write(data)


def read(*p):
    with open(os.path.join(*p), "rb") as f:
        return f.read()


def main():
    images = {n: read(IMG, n) for n in sorted(os.listdir(IMG)) if n.endswith((".png", ".jpg"))}
    hostile = {
        "png_100000x100000.png": png(2, 2, claim=(100000, 100000)),
        "png_0x0.png": png(2, 2, claim=(0, 0)),
        "png_truncated.png": png(8, 8)[:60],
        "jpg_65535x65535.jpg": jpeg_claim(os.path.join(IMG, "grad.jpg"), 65535, 65535),
        "jpg_0x0.jpg": jpeg_claim(os.path.join(IMG, "grad.jpg"), 0, 0),
        "jpg_truncated.jpg": images["grad.jpg"][:300],
        # Decoder work budgets (issue 17): text chunks that inflate to 40 MiB,
        # 32 MiB of image data after the rows, progressive files of 80 and
        # 150 scans (the limit is 100). Each stays under fuzz run.sh's 64 KiB.
        "png_ztxt_bomb.png": png(8, 8, extra=ztxt_chunks(40, 1)),
        "png_idat_excess.png": png(8, 8, zeros_mib=32),
        "jpg_80_scans.jpg": jpeg_scans(os.path.join(IMG, "quad_prog.jpg"), 80),
        "jpg_150_scans.jpg": jpeg_scans(os.path.join(IMG, "quad_prog.jpg"), 150),
    }
    # fuzz_image: selector byte + file (selectors cover channels/keep16/index/exif).
    for k, (n, b) in enumerate(list(images.items()) + list(hostile.items())):
        write("image", n, bytes([k * 7 & 0x1F]) + b)

    # fuzz_safetensors: the small fixtures plus a few edge headers.
    for n in ("st_python.safetensors", "ops_relu.safetensors", "ops_add.safetensors"):
        write("safetensors", n, read(FIX, n))
    def st(header, payload=b""):
        h = json.dumps(header).encode()
        return struct.pack("<Q", len(h)) + h + payload
    write("safetensors", "empty.st", st({}))
    write("safetensors", "meta.st", st({"__metadata__": {"config": "{}"}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8))
    write("safetensors", "f16_bf16.st", st({"a": {"dtype": "F16", "shape": [1, 2], "data_offsets": [0, 4]},
                                           "b": {"dtype": "BF16", "shape": [2], "data_offsets": [4, 8]}}, b"\1" * 8))
    write("safetensors", "overlap.st", st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                          "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8))
    write("safetensors", "huge_header_len.st", struct.pack("<Q", 1 << 62) + b"{}")

    # fuzz_label: flag byte (bit 0 = JSON follows) + PNG [+ separator + JSON].
    sep = b"\n--json--\n"
    for n in ("gray8.png", "pal.png", "gray16.png", "gray4.png"):
        write("label", "sem_" + n, b"\0" + images[n])
    write("label", "sem_ztxt_bomb.png", b"\0" + png(8, 8, 0, 8, extra=ztxt_chunks(40, 1)))
    write("label", "sem_gray16_1000", b"\0" + png(2, 2, 0, 16, rows=b"\0\x03\xe8\0\xff\0\0\x03\0\x12"))
    rgb_rows = b"".join(b"\0" + bytes([1, 0, 0] * 2 + [2, 0, 0] * 2) for _ in range(4))
    pano = png(4, 4, 2, 8, rows=rgb_rows)
    segs = json.dumps([{"id": 1, "category_id": 0}, {"id": 2, "category_id": 13, "iscrowd": 1}]).encode()
    write("label", "pano_ok", b"\1" + pano + sep + segs)
    write("label", "pano_obj", b"\1" + pano + sep + json.dumps({"segments_info": json.loads(segs)}).encode())
    write("label", "pano_missing_id", b"\1" + pano + sep + b'[{"id":1,"category_id":0}]')
    write("label", "pano_dup", b"\1" + pano + sep + b'[{"id":1,"category_id":0},{"id":1,"category_id":1}]')
    write("label", "pano_rgba", b"\1" + png(2, 2, 6) + sep + b"[]")
    write("label", "pano_100000", b"\1" + png(2, 2, claim=(100000, 100000)) + sep + b"[]")

    # fuzz_http: mode byte + payload (see fuzz_http.c).
    def part(name, value, filename=None, ctype=None):
        h = 'Content-Disposition: form-data; name="%s"' % name
        if filename:
            h += '; filename="%s"' % filename
        if ctype:
            h += "\r\nContent-Type: " + ctype
        return b"--fuzzbnd\r\n" + h.encode() + b"\r\n\r\n" + value + b"\r\n"
    small = images["rgb8.png"]
    write("http", "mp_image", b"\0" + part("image", small, "a.png", "image/png") + b"--fuzzbnd--\r\n")
    write("http", "mp_all", b"\0" + part("image", images["grad.jpg"], "a.jpg", "image/jpeg") + part("calibration", b"manual")
          + part("m", b"0.3") + part("outputs", b"panoptic,confidence,rle") + part("rle", b"true")
          + part("label", images["gray8.png"], "l.png", "image/png") + b"--fuzzbnd--\r\n")
    write("http", "mp_label_segments", b"\0" + part("image", small, "a.png") + part("label", pano, "l.png")
          + part("label_segments", segs) + b"--fuzzbnd--\r\n")
    write("http", "mp_unknown_field", b"\0" + part("colour", b"red") + b"--fuzzbnd--\r\n")
    write("http", "mp_truncated", b"\0" + part("image", small, "a.png")[:80])
    write("http", "mp_many_parts", b"\0" + b"".join(part("m", b"0.5") for _ in range(50)) + b"--fuzzbnd--\r\n")
    write("http", "ct_boundary_quote", b'\1multipart/form-data; boundary="\n' + b'--"\r\n\r\nx\r\n--"--\r\n')
    write("http", "ct_boundary_long", b"\1multipart/form-data; boundary=" + b"b" * 200 + b"\n" + b"--" + b"b" * 200 + b"--\r\n")
    write("http", "ct_json", b"\1application/json\n{}")
    write("http", "raw_png_opts", b"\2calibration=tbn&outputs=semantic&rle=1\n" + small)
    write("http", "raw_png_bad_m", b"\2calibration=manual&m=1e999\n" + small)
    write("http", "raw_png_100000", b"\2\n" + hostile["png_100000x100000.png"])
    write("http", "raw_get_metrics", b"\3GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    write("http", "raw_chunked", b"\3POST /v1/segment HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
          b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(small) + small + b"\r\n0\r\n\r\n")
    write("http", "raw_static_traversal", b"\3GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n")
    write("http", "raw_v2", b"\3GET /v2/models/test/ready HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc.1\r\n\r\n")

    # fuzz_request: upload bits, Content-Type line, image part type line, then
    # F(orm)/Q(uery) key=value lines (see fuzz_request.c).
    write("request", "defaults", b"\1image/png\n\n")
    write("request", "form_all", b"\1multipart/form-data; boundary=x\nimage/jpeg\nFcalibration=manual\nFm=0.5\n"
          b"Foutputs=panoptic,semantic,confidence,overlay,rle\nFrle=false\n")
    write("request", "query_opts", b"\1image/jpeg\n\nQcalibration=tbn\nQoutputs=semantic\nQrle=1\n")
    write("request", "size", b"\1image/jpeg\n\nQsize=256\nFsize=31\n")
    write("request", "form_over_query", b"\1multipart/form-data; boundary=x\n\nFcalibration=none\nQcalibration=tent\nQm=1\n")
    write("request", "bad_m", b"\1image/png\n\nQcalibration=manual\nQm=1e999\n")
    write("request", "manual_no_m", b"\1image/png\n\nFcalibration=manual\n")
    write("request", "unknown_field", b"\1multipart/form-data\n\nFcolour=red\n")
    write("request", "too_long", b"\1multipart/form-data\n\nFoutputs=" + b"panoptic," * 20 + b"\n")
    write("request", "label_segments_only", b"\5image/png\n\n")
    write("request", "no_image", b"\0image/png\n\nFcalibration=tbn\n")
    write("request", "outputs_all_spaces", b"\3IMAGE/PNG; charset=x\n\nQoutputs=all, none  ,rle\n")

    # fuzz_oip: flag byte (bit 0: send Inference-Header-Content-Length), its
    # value as 2 little-endian bytes, then the body (see fuzz_oip.c).
    def oip(header, binary=b"", hlen=None):
        h = json.dumps(header).encode()
        if hlen is None and not binary:
            return b"\0\0\0" + h
        n = len(h) if hlen is None else hlen
        return b"\1" + struct.pack("<H", n) + h + binary
    img = {"name": "image", "datatype": "BYTES", "shape": [1]}
    tiny = images[sorted(images)[0]][:64]
    elem = struct.pack("<I", len(tiny)) + tiny
    write("oip", "json_image", oip({"id": "a", "inputs": [img | {"data": [base64.b64encode(tiny).decode()]}]}))
    write("oip", "binary_image", oip({"parameters": {"binary_data_output": True, "calibration": "manual", "m": 0.5},
                                      "inputs": [img | {"parameters": {"binary_data_size": len(elem)}}],
                                      "outputs": [{"name": "labels"}, {"name": "segments_info",
                                                                       "parameters": {"binary_data": False}}]}, elem))
    write("oip", "lying_length", oip({"inputs": [img | {"parameters": {"binary_data_size": len(elem)}}]}, elem, 9))
    write("oip", "unknown_output", oip({"inputs": [img | {"data": ["AAAA"]}], "outputs": [{"name": "depth"}]}))
    write("oip", "size", oip({"parameters": {"size": 64}, "inputs": [img | {"data": ["AAAA"]}]}))
    write("oip", "nested_shape", oip({"inputs": [img | {"shape": [1, 1], "data": [["AAAA"]]}]}))


if __name__ == "__main__":
    main()
