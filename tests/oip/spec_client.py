#!/usr/bin/env python3
"""A generic Open Inference Protocol (KServe / Triton "v2") REST client,
written from the protocol's specification only: the health, server metadata,
model metadata and inference routes, and the binary tensor data extension.
It knows nothing of instcald beyond the model name and that the model takes
one encoded image as its BYTES input; everything else it reads from the
model metadata. tests/server/test_instcald_pdl.sh runs it against the
daemon. Python standard library only.

Usage: spec_client.py URL MODEL IMAGE [--json] [--summary OUT.json]
  --json     send and receive tensors as JSON only (no binary extension; the
             image then goes as a base64 string, the usual convention for
             binary BYTES in JSON)
  --summary  write {output: {datatype, shape, elements, first values}}

Spec points used:
- GET /v2/health/ready, GET /v2/models/{m}/ready: 200 when ready.
- GET /v2 -> {name, version, extensions}; "binary_tensor_data" when the
  binary extension is supported.
- GET /v2/models/{m} -> {name, versions?, platform, inputs, outputs}, each
  tensor {name, datatype, shape}, -1 for a variable dimension.
- POST /v2/models/{m}/infer with {id?, parameters?, inputs, outputs?};
  inputs {name, shape, datatype, parameters?, data}; outputs {name,
  parameters?}. Response {model_name, model_version?, id?, parameters?,
  outputs}, outputs {name, shape, datatype, parameters?, data}.
- Binary extension: input parameter binary_data_size (bytes of the tensor
  after the JSON), output parameter binary_data (bool) to ask for binary
  output; the JSON's length is the Inference-Header-Content-Length header;
  tensors are little-endian, row major; a BYTES element is a 4-byte
  unsigned length then the bytes.
- Errors: a non-200 status with a JSON body carrying "error".
"""
import base64
import json
import struct
import sys
import urllib.error
import urllib.request

FORMATS = {"BOOL": "?", "UINT8": "B", "UINT16": "H", "UINT32": "I", "UINT64": "Q", "INT8": "b",
           "INT16": "h", "INT32": "i", "INT64": "q", "FP32": "f", "FP64": "d"}


def request(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def die(msg):
    print("spec_client: " + msg, file=sys.stderr)
    sys.exit(1)


def decode_binary(datatype, raw):
    if datatype == "BYTES":
        out, pos = [], 0
        while pos < len(raw):
            (n,) = struct.unpack_from("<I", raw, pos)
            out.append(raw[pos + 4:pos + 4 + n])
            pos += 4 + n
        return out
    fmt = FORMATS[datatype]
    return list(struct.unpack("<%d%s" % (len(raw) // struct.calcsize(fmt), fmt), raw))


def main(argv):
    summary_path = argv[argv.index("--summary") + 1] if "--summary" in argv else None
    args = [a for a in argv if not a.startswith("--") and a is not summary_path]
    if len(args) != 3:
        die(__doc__.split("\n\n")[1])
    url, model, image_path = args[0].rstrip("/"), args[1], args[2]
    use_json = "--json" in argv

    st, _, _ = request("GET", url + "/v2/health/ready")
    if st != 200:
        die(f"server not ready ({st})")
    st, _, body = request("GET", url + "/v2")
    server = json.loads(body)
    binary = "binary_tensor_data" in server.get("extensions", []) and not use_json
    st, _, body = request("GET", f"{url}/v2/models/{model}/ready")
    if st != 200:
        die(f"model {model} not ready ({st})")
    st, _, body = request("GET", f"{url}/v2/models/{model}")
    meta = json.loads(body)
    inputs = [t for t in meta["inputs"] if t["datatype"] == "BYTES"]
    if len(meta["inputs"]) != 1 or not inputs:
        die("expected a model with one BYTES input")
    inp = inputs[0]
    shape = [1 if d == -1 else d for d in inp["shape"]]

    image = open(image_path, "rb").read()
    tensor = {"name": inp["name"], "datatype": "BYTES", "shape": shape}
    tail = b""
    if binary:
        tail = struct.pack("<I", len(image)) + image
        tensor["parameters"] = {"binary_data_size": len(tail)}
    else:
        tensor["data"] = [base64.b64encode(image).decode("ascii")]
    outputs = [{"name": o["name"], "parameters": {"binary_data": binary and o["datatype"] != "BYTES"}}
               for o in meta["outputs"]]
    header = json.dumps({"id": "spec-client-1", "inputs": [tensor], "outputs": outputs}).encode()
    headers = {"Content-Type": "application/octet-stream" if binary else "application/json"}
    if binary:
        headers["Inference-Header-Content-Length"] = str(len(header))
    st, rh, body = request("POST", f"{url}/v2/models/{model}/infer", header + tail, headers)
    if st != 200:
        die(f"infer failed ({st}): {body[:300]!r}")

    hlen = int(rh.get("inference-header-content-length", len(body)))
    resp = json.loads(body[:hlen])
    if resp.get("model_name") != model or resp.get("id") != "spec-client-1":
        die("response does not echo model_name and id")
    pos, summary = hlen, {}
    for out in resp["outputs"]:
        n = 1
        for d in out["shape"]:
            n *= d
        size = out.get("parameters", {}).get("binary_data_size")
        if size is not None:
            values = decode_binary(out["datatype"], body[pos:pos + size])
            pos += size
        else:
            values = out["data"]
            while values and isinstance(values[0], list):  # nested arrays are allowed
                values = [v for row in values for v in row]
        if len(values) != n:
            die(f"output {out['name']}: {len(values)} elements for shape {out['shape']}")
        first = [v.decode() if isinstance(v, bytes) else v for v in values[:3]]
        summary[out["name"]] = {"datatype": out["datatype"], "shape": out["shape"], "elements": n,
                                "first": first}
    if pos != len(body):
        die(f"{len(body) - pos} bytes left after the outputs")
    wanted = {o["name"] for o in meta["outputs"]}
    if set(summary) != wanted:
        die(f"got outputs {sorted(summary)}, asked for {sorted(wanted)}")
    text = json.dumps(summary)
    if summary_path:
        open(summary_path, "w").write(text)
    print(f"spec_client: {model}: " + ", ".join(f"{k} {v['datatype']} {v['shape']}" for k, v in summary.items()))


if __name__ == "__main__":
    main(sys.argv[1:])
