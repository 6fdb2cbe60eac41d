"""torch.ops.slak as PyTorch's tools meet it: registration, TorchScript (script, trace, save, load), torch.fx, ONNX
export (real Conv nodes, checked by onnx.checker; ONNX Runtime runs the exported files in the C# test
ExternalFrameworkTests.OnnxExportOfTheOperatorRunsInOnnxRuntime through onnx_export_case.py), double backward, Meta.

Run: PYTHONPATH=python SLAK_KERNELS_LIBRARY=<cmake build dir> /usr/bin/python3 -m unittest discover -s python/tests
"""
import io
import os
import random
import sys
import unittest

import torch
import torch.nn.functional as F

try:
    import slak_torch  # the installed package (pip install ./python), or PYTHONPATH=python
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import slak_torch  # noqa: E402

SEED = int(os.environ.get("SLAK_TEST_SEED", random.randrange(1 << 30)))
TOL = 1e-5  # relative to the largest reference magnitude


class Block(torch.nn.Module):
    """A functional use of the operator between two ordinary layers."""

    def __init__(self, c=4, k=9, s=3):
        super().__init__()
        self.pre = torch.nn.Conv2d(c, c, 1)
        self.w_long = torch.nn.Parameter(torch.randn(c, 1, k, s))
        self.w_wide = torch.nn.Parameter(torch.randn(c, 1, s, k))
        self.w_small = torch.nn.Parameter(torch.randn(c, 1, s, s))
        self.register_buffer("m_long", (torch.rand(c, 1, k, s) < 0.6).float())
        self.register_buffer("m_wide", (torch.rand(c, 1, s, k) < 0.6).float())

    def forward(self, x):
        y = torch.ops.slak.decomposed_dwconv2d(self.pre(x), self.w_long, self.w_wide, self.w_small, self.m_long,
                                               self.m_wide, None)
        return torch.relu(y)

    def reference(self, x):
        x = self.pre(x)
        y = 0
        for w, m in ((self.w_long, self.m_long), (self.w_wide, self.m_wide), (self.w_small, None)):
            y = y + F.conv2d(x, w if m is None else w * m, padding=(w.shape[2] // 2, w.shape[3] // 2), groups=x.shape[1])
        return torch.relu(y)


def close(tc, got, ref, what):
    scale = ref.abs().max().item() or 1.0
    err = (got.double() - ref.double()).abs().max().item()
    tc.assertLessEqual(err, TOL * scale, f"{what}: max error {err:.3g} > {TOL} x {scale:.3g} (seed {SEED})")


class TorchIntegrationTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(SEED)
        self.model = Block()
        self.x = torch.randn(2, 4, 11, 10)

    def test_registered_in_torch_ops(self):
        self.assertIn("Tensor? m_small=None", str(torch.ops.slak.decomposed_dwconv2d.default._schema))
        self.assertIn("Tensor? mask=None", str(torch.ops.slak.dwconv2d.default._schema))

    def test_script_and_trace_save_load(self):
        ref = self.model.reference(self.x)
        for kind, module in (("script", torch.jit.script(self.model)),
                             ("trace", torch.jit.trace(self.model, (self.x,)))):
            self.assertIn("slak::decomposed_dwconv2d", str(module.graph), kind)
            buf = io.BytesIO()
            torch.jit.save(module, buf)
            buf.seek(0)
            loaded = torch.jit.load(buf)
            xr = self.x.clone().requires_grad_()
            y = loaded(xr)
            close(self, y, ref, f"{kind} + save/load forward")
            y.sum().backward()  # autograd through the loaded module's operator
            xr2 = self.x.clone().requires_grad_()
            self.model.reference(xr2).sum().backward()
            close(self, xr.grad, xr2.grad, f"{kind} + save/load input gradient")

    def test_fx_symbolic_trace(self):
        gm = torch.fx.symbolic_trace(self.model)
        targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
        self.assertIn(torch.ops.slak.decomposed_dwconv2d, targets)
        close(self, gm(self.x), self.model.reference(self.x), "fx GraphModule")

    def test_onnx_export_emits_depthwise_convs(self):
        import onnx
        buf = io.BytesIO()
        torch.onnx.export(self.model, (self.x,), buf, input_names=["input"], output_names=["logits"],
                          opset_version=13)
        model = onnx.load_from_string(buf.getvalue())
        onnx.checker.check_model(model)
        self.assertEqual([i.name for i in model.graph.input][:1], ["input"])
        convs = [n for n in model.graph.node if n.op_type == "Conv"]
        self.assertEqual(len(convs), 4, "1x1 conv + three depthwise branch convs")
        groups = sorted(next(a.i for a in n.attribute if a.name == "group") for n in convs)
        self.assertEqual(groups, [1, 4, 4, 4])
        self.assertNotIn("slak", {n.domain for n in model.graph.node})
        # The output depends on the input (issue 28: the old export was a single Constant).
        self.assertTrue(any(n.input and n.input[0] == "input" for n in model.graph.node))

    def test_double_backward_is_refused(self):
        x = self.x.clone().requires_grad_()
        y = self.model(x)
        with self.assertRaisesRegex(RuntimeError, "double backward"):
            torch.autograd.grad(y.sum(), x, create_graph=True)
        # A plain backward still works after the refusal.
        x2 = self.x.clone().requires_grad_()
        self.model(x2).sum().backward()
        self.assertIsNotNone(x2.grad)

    def test_meta_tensors(self):
        x = torch.empty(2, 4, 11, 10, device="meta")
        w = torch.empty(4, 1, 9, 3, device="meta")
        y = torch.ops.slak.dwconv2d(x, w, None)
        self.assertEqual((y.device.type, tuple(y.shape)), ("meta", (2, 4, 11, 10)))

    def test_inference_mode(self):
        with torch.inference_mode():
            close(self, self.model(self.x), self.model.reference(self.x), "inference_mode")


if __name__ == "__main__":
    unittest.main()
