#!/usr/bin/env python3
"""POST /v2/models/{name}/infer against a running instcald (pdl backend):
JSON and binary round trips, every output, the same masks as /v1/segment for
the same image and mode, and each error path (docs/api.md, "Open Inference
Protocol"). Python standard library only.

Usage: test_oip.py URL IMAGE.png
Prints one line per check; exits 1 when any failed."""
import base64
import json
import struct
import sys
import urllib.error
import urllib.request
import zlib

URL, IMAGE = sys.argv[1], sys.argv[2]
FAILS = 0


def check(ok, what, detail=""):
    global FAILS
    print(("ok: " if ok else "FAIL: ") + what + ("" if ok else f" ({detail})"))
    if not ok:
        FAILS += 1
    return ok


def http(method, path, body=None, headers=None):
    req = urllib.request.Request(URL + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def png_decode(data):
    """8-bit gray, RGB or palette PNG (no interlace) -> (w, h, channels, rows)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and interlace == 0 and ctype in (0, 2, 3)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + n
    ch = 3 if ctype == 2 else 1
    raw, stride, rows, prev = zlib.decompress(idat), w * ch, [], bytearray(w * ch)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - ch] if i >= ch else 0
            b, c = prev[i], prev[i - ch] if i >= ch else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return w, h, ch, rows


def v1(mode, m=None, size=None):
    q = f"?calibration={mode}&outputs=panoptic,semantic,confidence" + (f"&m={m}" if m is not None else "")
    q += f"&size={size}" if size is not None else ""
    st, _, body = http("POST", "/v1/segment" + q, IMAGE_BYTES, {"Content-Type": "image/png"})
    assert st == 200, body[:300]
    r = json.loads(body)
    w, h, _, pan = png_decode(base64.b64decode(r["masks"]["panoptic_png"]))
    ids = [row[3 * x] + 256 * row[3 * x + 1] + 65536 * row[3 * x + 2] for row in pan for x in range(w)]
    _, _, _, sem = png_decode(base64.b64decode(r["masks"]["semantic_png"]))
    _, _, _, conf = png_decode(base64.b64decode(r["masks"]["confidence_png"]))
    return r, ids, [v for row in sem for v in row], [v for row in conf for v in row]


def infer_json(req, path=None):
    st, hd, body = http("POST", path or INFER, json.dumps(req).encode(), {"Content-Type": "application/json"})
    return st, hd, body


def infer_binary(header, binary, hlen=None, path=None):
    head = json.dumps(header).encode()
    hl = str(len(head) if hlen is None else hlen)
    return http("POST", path or INFER, head + binary,
                {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": hl})


def parse_response(hd, body):
    """-> (header JSON, {name: list of values or the BYTES string})."""
    hl = {k.lower(): v for k, v in hd.items()}.get("inference-header-content-length")
    n = int(hl) if hl is not None else len(body)
    head, pos, out = json.loads(body[:n]), n, {}
    for o in head["outputs"]:
        size = o.get("parameters", {}).get("binary_data_size")
        if size is None:
            out[o["name"]] = o["data"][0] if o["datatype"] == "BYTES" else o["data"]
            continue
        raw = body[pos:pos + size]
        pos += size
        if o["datatype"] == "BYTES":
            (ln,) = struct.unpack("<I", raw[:4])
            out[o["name"]] = raw[4:4 + ln].decode()
        else:
            out[o["name"]] = list(struct.unpack("<%d%s" % (size // 4, "i" if o["datatype"] == "INT32" else "f"), raw))
    check(pos == len(body), "response: binary outputs fill the body exactly", f"{pos} of {len(body)}")
    return head, out


def error_of(st, body):
    try:
        return st, json.loads(body)["error"]["code"]
    except Exception:  # noqa: BLE001
        return st, None


IMAGE_BYTES = open(IMAGE, "rb").read()
B64 = base64.b64encode(IMAGE_BYTES).decode()
ELEM = struct.pack("<I", len(IMAGE_BYTES)) + IMAGE_BYTES
ALL = ["labels", "semantic", "confidence", "segments_info"]

st, _, body = http("GET", "/v1/models")
MODEL = json.loads(body)["models"][0]["name"]
INFER = f"/v2/models/{MODEL}/infer"

# ---- metadata --------------------------------------------------------------------
st, _, body = http("GET", "/v2")
check(st == 200 and "binary_tensor_data" in json.loads(body)["extensions"], "GET /v2 lists binary_tensor_data", body[:200])
st, _, body = http("GET", f"/v2/models/{MODEL}")
meta = json.loads(body)
check([(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]] == [("image", "BYTES", [1])],
      "metadata: one input image BYTES [1]", meta.get("inputs"))
check({o["name"]: (o["datatype"], o["shape"]) for o in meta["outputs"]} ==
      {"labels": ("INT32", [-1, -1]), "semantic": ("INT32", [-1, -1]), "confidence": ("FP32", [-1, -1]),
       "segments_info": ("BYTES", [1])}, "metadata: the four outputs", meta.get("outputs"))
check(meta["parameters"]["default_outputs"] == ["labels", "segments_info"], "metadata: default outputs")
check(meta.get("versions") == ["1"], "metadata: version 1")
st, _, body = http("GET", "/v1/models")
net = json.loads(body)["models"][0]["network_input"]["min_size_test"]
check(meta["parameters"]["size"] == {"datatype": "int", "range": [32, 1024], "default": net},
      "metadata: size, its bounds and the model's default", meta["parameters"].get("size"))

# ---- JSON request, every output, against /v1 ---------------------------------------
for mode, m in (("none", None), ("tbn", None), ("manual", 0.3)):
    ref, ids, sem, conf = v1(mode, m)
    params = {"calibration": mode} | ({"m": m} if m is not None else {})
    st, hd, body = infer_json({"id": "req-" + mode, "parameters": params,
                               "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [B64]}],
                               "outputs": [{"name": n} for n in ALL]})
    if not check(st == 200, f"{mode}: JSON infer 200", body[:300]):
        continue
    head, out = parse_response(hd, body)
    w, h = ref["image"]["width"], ref["image"]["height"]
    check(head["id"] == "req-" + mode and head["model_name"] == MODEL, f"{mode}: id and model echoed")
    check(all(o["shape"] == [h, w] for o in head["outputs"] if o["name"] != "segments_info"), f"{mode}: shapes [H, W]")
    check(out["labels"] == ids, f"{mode}: labels = /v1 panoptic PNG ids")
    check(out["semantic"] == sem, f"{mode}: semantic = /v1 semantic PNG")
    diff = max(abs(round(c * 255) - p) for c, p in zip(out["confidence"], conf))
    check(len(out["confidence"]) == w * h and diff <= 1, f"{mode}: confidence = /v1 confidence PNG / 255", diff)
    segs = json.loads(out["segments_info"])
    check([(s["id"], s["category_id"], s["area"]) for s in segs] ==
          [(s["id"], s["category_id"], s["area"]) for s in ref["segments"]], f"{mode}: segments_info = /v1 segments")
    d = head["parameters"]["drift_score"]
    check(abs(d - ref["drift_score"]) <= 1e-5 * abs(d) and head["parameters"]["calibration"]["mode"] == mode,
          f"{mode}: drift_score and calibration in parameters", f"{d} vs {ref['drift_score']}")
    if mode == "tbn":
        JSON_OUT = out

# ---- size: a smaller network input, maps still at the image size, as /v1 ---------------
ref, ids, sem, _ = v1("tbn", size=32)
st, hd, body = infer_json({"parameters": {"calibration": "tbn", "size": 32},
                           "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [B64]}],
                           "outputs": [{"name": "labels"}, {"name": "semantic"}]})
if check(st == 200, "size 32: 200", body[:300]):
    head, out = parse_response(hd, body)
    w, h = ref["image"]["width"], ref["image"]["height"]
    check(ref["network_input"]["height"] == 32 and head["parameters"]["network_input"] == ref["network_input"],
          "size 32: the network saw a 32-pixel short side", ref["network_input"])
    check(head["outputs"][0]["shape"] == [h, w] and out["labels"] == ids and out["semantic"] == sem,
          "size 32: maps at the image size, equal to /v1 with size=32")
    check(out["semantic"] != JSON_OUT["semantic"], "size 32: a different answer than the default size")

# ---- binary request and outputs ----------------------------------------------------
st, hd, body = infer_binary({"parameters": {"calibration": "tbn", "binary_data_output": True},
                             "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                         "parameters": {"binary_data_size": len(ELEM)}}],
                             "outputs": [{"name": n} for n in ALL]}, ELEM)
if check(st == 200 and "inference-header-content-length" in {k.lower() for k in hd}, "binary infer 200 with the header length", body[:300]):
    head, out = parse_response(hd, body)
    check(all("binary_data_size" in o["parameters"] for o in head["outputs"]), "binary: every output binary")
    f32 = lambda v: struct.unpack("<%df" % len(v), struct.pack("<%df" % len(v), *v))  # noqa: E731
    check({k: v for k, v in out.items() if k != "confidence"} == {k: v for k, v in JSON_OUT.items() if k != "confidence"},
          "binary: the same labels, semantic and segments_info as the JSON round trip")
    check(f32(out["confidence"]) == f32(JSON_OUT["confidence"]), "binary: the same FP32 confidence as JSON (9 digits)")
# mixed: per-output binary_data, and the version route
st, hd, body = infer_binary({"parameters": {"calibration": "tbn"},
                             "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                         "parameters": {"binary_data_size": len(ELEM)}}],
                             "outputs": [{"name": "labels", "parameters": {"binary_data": True}}, {"name": "segments_info"}]},
                            ELEM, path=f"/v2/models/{MODEL}/versions/1/infer")
if check(st == 200, "versions/1/infer, labels binary and segments_info JSON", body[:300]):
    head, out = parse_response(hd, body)
    check([o["name"] for o in head["outputs"]] == ["labels", "segments_info"] and
          "data" in head["outputs"][1] and out["labels"] == JSON_OUT["labels"], "mixed outputs as asked")
# default outputs
st, hd, body = infer_json({"parameters": {"calibration": "tbn"},
                           "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [B64]}]})
if check(st == 200, "no outputs named: 200", body[:300]):
    head, out = parse_response(hd, body)
    check(sorted(out) == ["labels", "segments_info"] and "id" not in head, "no outputs named: the defaults, no id")

# ---- errors -------------------------------------------------------------------------
IMG = {"name": "image", "datatype": "BYTES", "shape": [1], "data": [B64]}
cases = [
    ("wrong datatype", {"inputs": [IMG | {"datatype": "FP32"}]}, 400, "bad_infer_request"),
    ("wrong shape", {"inputs": [IMG | {"shape": [2]}]}, 400, "bad_infer_request"),
    ("unknown input", {"inputs": [IMG, IMG | {"name": "mask"}]}, 400, "unknown_tensor"),
    ("unknown output", {"inputs": [IMG], "outputs": [{"name": "depth"}]}, 400, "unknown_tensor"),
    ("missing image", {"inputs": []}, 400, "missing_image"),
    ("image without data", {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1]}]}, 400, "missing_image"),
    ("not base64", {"inputs": [IMG | {"data": ["not base64!"]}]}, 400, "bad_infer_request"),
    ("bad calibration", {"parameters": {"calibration": "magic"}, "inputs": [IMG]}, 400, "bad_parameter"),
    ("m out of range", {"parameters": {"calibration": "manual", "m": 2}, "inputs": [IMG]}, 400, "bad_parameter"),
    ("unknown parameter", {"parameters": {"colour": 3}, "inputs": [IMG]}, 400, "bad_parameter"),
    ("size below min_request_size", {"parameters": {"size": 3}, "inputs": [IMG]}, 400, "bad_parameter"),
    ("size not an integer", {"parameters": {"size": "64"}, "inputs": [IMG]}, 400, "bad_parameter"),
    ("not an image", {"inputs": [IMG | {"data": [base64.b64encode(b"hello world!").decode()]}]}, 400, "bad_image"),
]
for what, req, want, code in cases:
    st, _, body = infer_json(req)
    check(error_of(st, body) == (want, code), f"error: {what} -> {want} {code}", body[:200])
st, _, body = http("POST", INFER, b"{not json", {"Content-Type": "application/json"})
check(error_of(st, body) == (400, "bad_infer_request"), "error: invalid JSON", body[:200])
BIN = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": len(ELEM)}}]}
head = json.dumps(BIN).encode()
for what, hlen, binary, code in (
        ("header length longer than the body", len(head) + len(ELEM) + 1, ELEM, "bad_binary_data"),
        ("header length cuts the JSON", len(head) - 5, ELEM, "bad_infer_request"),
        ("header length not a number", "12x", ELEM, "bad_binary_data"),
        ("binary_data_size larger than the data", None, ELEM[:-10], "bad_binary_data"),
        ("bytes left after the inputs", None, ELEM + b"xx", "bad_binary_data"),
        ("BYTES length prefix lies", None, struct.pack("<I", len(IMAGE_BYTES) - 1) + IMAGE_BYTES, "bad_binary_data")):
    st, _, body = infer_binary(BIN, binary, hlen)
    check(error_of(st, body) == (400, code), f"error: {what} -> 400 {code}", body[:200])
st, _, body = infer_json({"inputs": [IMG]}, path="/v2/models/nope/infer")
check(error_of(st, body) == (404, "model_not_found"), "error: unknown model -> 404", body[:200])
st, _, body = infer_json({"inputs": [IMG]}, path=f"/v2/models/{MODEL}/versions/2/infer")
check(error_of(st, body) == (404, "model_not_found"), "error: unknown version -> 404", body[:200])
st, hd, body = http("GET", INFER)
check(error_of(st, body) == (405, "method_not_allowed"), "error: GET infer -> 405", body[:200])
# still serving after all that
st, _, _ = infer_json({"inputs": [IMG]})
check(st == 200, "still serving")
sys.exit(1 if FAILS else 0)
