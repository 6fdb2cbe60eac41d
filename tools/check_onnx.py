#!/usr/bin/python3
"""Runs the ONNX checker (Debian's python3-onnx) on files written by `slak export --onnx`.

Usage: tools/check_onnx.py MODEL.onnx [MODEL.onnx ...]

For each file: onnx.checker.check_model with full_check (which also runs shape inference), then prints the IR
version, the opset imports, the graph's inputs and outputs with their (possibly named) dimensions and the operator
counts. Exits 1 when any file fails, naming the file and the checker's message.
"""
import collections
import sys

try:
    import onnx
except ImportError:
    sys.exit("check_onnx.py: the onnx module is missing (Debian: apt-get install python3-onnx)")


def describe_value(value):
    dims = []
    for d in value.type.tensor_type.shape.dim:
        dims.append(d.dim_param if d.HasField("dim_param") else str(d.dim_value))
    return f"{value.name} ({', '.join(dims)})"


def check(path):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    ops = collections.Counter(node.op_type for node in model.graph.node)
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
    print(f"{path}: OK (onnx {onnx.__version__} checker, full check)")
    print(f"  IR version {model.ir_version}, opset {opsets}, producer {model.producer_name}")
    print(f"  inputs: {'; '.join(describe_value(v) for v in model.graph.input)}")
    print(f"  outputs: {'; '.join(describe_value(v) for v in model.graph.output)}")
    print(f"  {len(model.graph.initializer)} initializers, {len(model.graph.node)} nodes: "
          + ", ".join(f"{k} {v}" for k, v in sorted(ops.items())))


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__.strip())
    failed = 0
    for path in argv[1:]:
        try:
            check(path)
        except Exception as e:  # the checker raises several exception types; report each with its file
            print(f"{path}: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
