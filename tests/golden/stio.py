"""Minimal safetensors writer/reader for the golden-fixture generators.

Written here rather than imported so that the generators need only Debian's
python3-torch and python3-numpy. Tensors are stored as little-endian F32
(or the dtype of the numpy array for int64/int32/uint8).
"""
import json
import struct

import numpy as np

_DTYPES = {np.dtype('float32'): 'F32', np.dtype('float16'): 'F16', np.dtype('int64'): 'I64',
           np.dtype('int32'): 'I32', np.dtype('uint8'): 'U8'}


def save(path, tensors, metadata=None):
    """tensors: dict name -> numpy array (or torch tensor)."""
    header = {}
    blobs = []
    offset = 0
    for name, arr in tensors.items():
        if hasattr(arr, 'detach'):
            arr = arr.detach().cpu().numpy()
        arr = np.ascontiguousarray(arr)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        dt = _DTYPES[arr.dtype]
        data = arr.astype(arr.dtype.newbyteorder('<')).tobytes()
        header[name] = {'dtype': dt, 'shape': list(arr.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header['__metadata__'] = {k: str(v) for k, v in metadata.items()}
    hjson = json.dumps(header, separators=(',', ':')).encode()
    hjson += b' ' * ((8 - len(hjson) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def load(path):
    with open(path, 'rb') as f:
        raw = f.read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop('__metadata__', {})
    out = {}
    rev = {v: k for k, v in _DTYPES.items()}
    for name, info in header.items():
        b, e = info['data_offsets']
        out[name] = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=rev[info['dtype']]).reshape(info['shape'])
    return out, meta
