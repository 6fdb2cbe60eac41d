"""Writes small files made by numpy / PyTorch for the C# reader tests (tests/Slak.Tests/IO).

Regenerate (a second):  /usr/bin/python3 tools/make_io_fixtures.py
Output: tests/TestData/io/
  npy/f4_2x3x4.npy     float32 (2,3,4),  values (i*0.37 - 2.1) in float64 then cast, i = flat C index
  npy/f8_5.npy         float64 (5,),     values i*0.37 - 2.1
  npy/i8_2x3.npy       int64 (2,3),      values i*123456789012 - 500000000000
  npy/f8_scalar.npy    float64 0-d,      value 3.25
  npy/f4_v2.npy        float32 (3,2) written as format version 2.0, values as f4_2x3x4
  npy/f4_empty.npy     float32 (0,4)
  npy/bad_fortran.npy  float32 (2,3) with fortran_order True       -> must be rejected
  npy/bad_bigendian.npy '>f4' (2,)                                  -> must be rejected
  npy/bad_i4.npy       '<i4' (3,)                                   -> must be rejected
  safetensors/mixed.safetensors  written by tools/st_io.py from torch tensors, metadata {"format": "pt"}:
      "f32" F32 (2,3), "f64" F64 (4,), "f16" F16 (5,), "bf16" BF16 (2,2), "i64" I64 (3,), "i32" I32 (2,),
      "u8" U8 (4,), "bool" BOOL (3,), "scalar" I64 0-d (value 7), "empty" F32 (0,3),
      and for each float tensor X an "expected.X" F32 tensor holding torch's own X.to(float32) (the C# float32
      conversion must match it exactly); integer values are listed in the test.
  idx/images-idx3-ubyte(.gz)  u8 (3, 4, 5), value (i*7) % 256;  idx/labels-idx1-ubyte(.gz)  u8 (3,) = [0, 9, 4]
"""
import gzip
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st_io import write_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "TestData", "io")


def seq(n):
    return np.arange(n, dtype=np.float64) * 0.37 - 2.1


def npy():
    d = os.path.join(OUT, "npy")
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, "f4_2x3x4.npy"), seq(24).astype("<f4").reshape(2, 3, 4))
    np.save(os.path.join(d, "f8_5.npy"), seq(5).astype("<f8"))
    np.save(os.path.join(d, "i8_2x3.npy"), (np.arange(6, dtype=np.int64) * 123456789012 - 500000000000).reshape(2, 3))
    np.save(os.path.join(d, "f8_scalar.npy"), np.array(3.25, dtype="<f8"))
    np.save(os.path.join(d, "f4_empty.npy"), np.zeros((0, 4), dtype="<f4"))
    with open(os.path.join(d, "f4_v2.npy"), "wb") as f:
        np.lib.format.write_array(f, seq(6).astype("<f4").reshape(3, 2), version=(2, 0))
    np.save(os.path.join(d, "bad_fortran.npy"), np.asfortranarray(seq(6).astype("<f4").reshape(2, 3)))
    np.save(os.path.join(d, "bad_bigendian.npy"), seq(2).astype(">f4"))
    np.save(os.path.join(d, "bad_i4.npy"), np.arange(3, dtype="<i4"))


def safetensors():
    d = os.path.join(OUT, "safetensors")
    os.makedirs(d, exist_ok=True)
    g = torch.Generator().manual_seed(7)
    floats = {
        "f32": torch.randn(2, 3, generator=g),
        "f64": torch.randn(4, generator=g, dtype=torch.float64) * 1e3,
        "f16": (torch.randn(5, generator=g) * 100).to(torch.float16),
        "bf16": (torch.randn(2, 2, generator=g) * 1e5).to(torch.bfloat16),
    }
    tensors = list(floats.items()) + [
        ("i64", torch.tensor([-(2 ** 62), 0, 2 ** 40 + 3], dtype=torch.int64)),
        ("i32", torch.tensor([-7, 2 ** 31 - 1], dtype=torch.int32)),
        ("u8", torch.tensor([0, 1, 128, 255], dtype=torch.uint8)),
        ("bool", torch.tensor([True, False, True])),
        ("scalar", torch.tensor(7, dtype=torch.int64)),
        ("empty", torch.zeros(0, 3)),
    ]
    tensors += [("expected." + k, v.to(torch.float32)) for k, v in floats.items()]
    write_safetensors(os.path.join(d, "mixed.safetensors"), tensors, metadata={"format": "pt"})


def idx():
    d = os.path.join(OUT, "idx")
    os.makedirs(d, exist_ok=True)
    images = (np.arange(60) * 7 % 256).astype(np.uint8)
    img = struct.pack(">IIII", 0x803, 3, 4, 5) + images.tobytes()
    lab = struct.pack(">II", 0x801, 3) + bytes([0, 9, 4])
    for name, data in (("images-idx3-ubyte", img), ("labels-idx1-ubyte", lab)):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        with gzip.GzipFile(os.path.join(d, name + ".gz"), "wb", mtime=0) as f:
            f.write(data)


if __name__ == "__main__":
    npy()
    safetensors()
    idx()
    print("wrote", os.path.relpath(OUT, ROOT))
