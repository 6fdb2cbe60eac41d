"""Minimal safetensors and .npy writers for the fixture scripts (no `safetensors` package on Debian bookworm).

safetensors layout: u64 little-endian header length N, N bytes of UTF-8 JSON
  {name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {str: str}},
padded with spaces to a multiple of 8 bytes (as the reference library does), then the data, row-major little-endian,
offsets relative to the first byte after the header. Tensors are written in the order given.

Not a script; imported by make_infer_fixture.py. Regenerate fixtures by running that script.
"""
import json
import os
import struct
import tempfile

import numpy as np
import torch

_DTYPES = {
    torch.float32: ("F32", "<f4"), torch.float64: ("F64", "<f8"), torch.float16: ("F16", "<f2"),
    torch.int64: ("I64", "<i8"), torch.int32: ("I32", "<i4"), torch.uint8: ("U8", "u1"), torch.bool: ("BOOL", "?"),
}


def _atomic_write(path, data):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def safetensors_bytes(tensors, metadata=None):
    """tensors: list of (name, torch.Tensor). Returns the file content as bytes."""
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors:
        if t.dtype == torch.bfloat16:
            code = "BF16"
            raw = t.detach().contiguous().view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            code, np_dtype = _DTYPES[t.dtype]
            raw = t.detach().contiguous().numpy().astype(np_dtype).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def write_safetensors(path, tensors, metadata=None):
    _atomic_write(path, safetensors_bytes(tensors, metadata))


def write_npy(path, array):
    """np.save through a temp file, so a failed write keeps the old file."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npy")
    os.close(fd)
    try:
        os.chmod(tmp, 0o644)
        np.save(tmp, np.ascontiguousarray(array), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
