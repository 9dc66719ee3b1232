"""Writes tests/golden/fixtures/st_python.safetensors with the independent
Python writer (stio.py), so the C reader is checked against a file it did not
write. Run: /usr/bin/python3 tests/golden/gen_safetensors.py"""
import os

import numpy as np

import stio

HERE = os.path.dirname(os.path.abspath(__file__))
tensors = {
    'arange': (np.arange(24, dtype=np.float32) * 0.5).reshape(2, 3, 4),
    'half': np.array([1.0, -2.5, 3.0], dtype=np.float16),
    'ids': np.array([1, 2, 3], dtype=np.int64),
}
stio.save(os.path.join(HERE, 'fixtures', 'st_python.safetensors'), tensors, {'purpose': 'test'})
