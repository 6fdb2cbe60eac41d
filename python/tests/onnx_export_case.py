"""Writes ONNX exports of the slak operators with their inputs and the operator's own outputs, for ONNX Runtime to
run (onnxruntime for Python is not packaged for Debian; the C# test ExternalFrameworkTests runs these files in
Microsoft.ML.OnnxRuntime and compares with expected.npy).

    /usr/bin/python3 python/tests/onnx_export_case.py OUT_DIR [SEED]

OUT_DIR/<case>/{model.onnx, input.npy, expected.npy} for the cases
  functional  torch.ops.slak.decomposed_dwconv2d, three branches (two masked at 0.6) after a 1x1 conv
  module      a reference SLaK model (tools/slak_reference_model.py) after replace_large_kernels, eval mode
  fused       the same with fuse=True (one merged union kernel per block)
Input name "input", output name "logits". Prints one line per case with its node counts.
"""
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
try:
    import slak_torch  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.join(HERE, ".."))
    import slak_torch  # noqa: F401
from test_modules import reference_model  # noqa: E402
from test_torch_integration import Block  # noqa: E402


def export(name, model, x, out_dir):
    import onnx
    folder = os.path.join(out_dir, name)
    os.makedirs(folder, exist_ok=True)
    model.eval()
    with torch.no_grad():
        expected = model(x)
    path = os.path.join(folder, "model.onnx")
    torch.onnx.export(model, (x,), path, input_names=["input"], output_names=["logits"], opset_version=13)
    graph = onnx.load(path)
    onnx.checker.check_model(graph)
    ops = {}
    for node in graph.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    if not ops.get("Conv"):
        sys.exit(f"{name}: no Conv node in the export: {ops}")
    np.save(os.path.join(folder, "input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(folder, "expected.npy"), expected.numpy().astype(np.float32))
    print(f"{name}: {sum(ops.values())} nodes, Conv {ops['Conv']}, input {tuple(x.shape)}, logits "
          f"{tuple(expected.shape)}")


def main():
    out_dir = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    torch.manual_seed(seed)
    export("functional", Block(), torch.randn(2, 4, 11, 10), out_dir)
    model, masks = reference_model()
    x = torch.randn(2, 1, 40, 36)
    export("module", slak_torch.replace_large_kernels(model, masks), x, out_dir)
    model, masks = reference_model()
    export("fused", slak_torch.replace_large_kernels(model.eval(), masks, fuse=True), x, out_dir)


if __name__ == "__main__":
    main()
