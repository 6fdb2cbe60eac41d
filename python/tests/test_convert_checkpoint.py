"""Round trip of tools/convert_slak_checkpoint.py: a random SLaK built with tools/slak_reference_model.py is saved the way the
reference saves it ({'model', 'model_ema', 'args', 'epoch'}, and variants), converted, run through `slak infer`, and
the logits compared with PyTorch's (float64 forward of the same weights) within 1e-4 relative to the largest logit.

Run: PYTHONPATH=python /usr/bin/python3 -m unittest discover -s python/tests
`slak infer` is the built CLI: $SLAK_CLI_DLL, else src/Slak.Cli/bin/Release/net10.0/Slak.Cli.dll (dotnet build
src/Slak.Cli -c Release); without it (or without dotnet) the infer comparisons are skipped, the rest still runs.
"""
import argparse
import importlib.util
import math
import os
import pickle
import random
import shutil
import subprocess
import sys
import tempfile
import types
import unittest

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, "tools")
SEED = int(os.environ.get("SLAK_TEST_SEED", random.randrange(1 << 30)))


def _load(name, filename):
    spec = importlib.util.spec_from_file_location(name, os.path.join(TOOLS, filename))
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, TOOLS)  # their own `from st_io import ...`
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(TOOLS)
    return mod


ref = _load("slak_reference_model_for_tests", "slak_reference_model.py")
conv = _load("convert_slak_checkpoint", "convert_slak_checkpoint.py")
st_io = _load("st_io_for_tests", "st_io.py")


def cli_dll():
    path = os.environ.get("SLAK_CLI_DLL") or os.path.join(ROOT, "src", "Slak.Cli", "bin", "Release", "net10.0",
                                                          "Slak.Cli.dll")
    return path if os.path.exists(path) and shutil.which("dotnet") else None


def randomise(model, gen, zero_fraction):
    """Every parameter/buffer random (init values such as gamma 1e-6 or identity BN would hide mistakes)."""
    with torch.no_grad():
        for name, t in model.state_dict().items():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "num_batches_tracked":
                t.fill_(int(torch.randint(0, 1000, (1,), generator=gen)))
            elif t.dim() >= 2:
                t.copy_(torch.randn(t.shape, generator=gen) / math.sqrt(t[0].numel()))
                t.mul_((torch.rand(t.shape, generator=gen) >= zero_fraction).float())  # pruned = exact zeros
            elif leaf == "gamma":
                t.copy_(0.3 + 0.7 * torch.rand(t.shape, generator=gen))
            elif leaf == "running_mean":
                t.copy_(0.2 * torch.randn(t.shape, generator=gen))
            elif leaf == "running_var":
                t.copy_(0.1 + torch.rand(t.shape, generator=gen))
            elif leaf == "weight":
                t.copy_(0.5 + torch.rand(t.shape, generator=gen))
            else:
                t.copy_(0.1 * torch.randn(t.shape, generator=gen))


class ConvertCheckpointTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="slak-convert-")
        self.gen = torch.Generator().manual_seed(SEED)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def build(self, **cfg):
        torch.manual_seed(SEED)
        model = ref.SLaK(**cfg)
        randomise(model, self.gen, 0.3)
        return model.eval()

    def convert(self, ckpt, **kw):
        path = os.path.join(self.tmp, "in.pth")
        torch.save(ckpt, path)
        out = os.path.join(self.tmp, "out")
        lines = []
        cfg = conv.convert(path, out, log=lines.append, **kw)
        return cfg, out, lines

    def check_infer(self, model, out, in_chans, what):
        dll = cli_dll()
        if dll is None:
            self.skipTest("slak CLI not built (dotnet build src/Slak.Cli -c Release) or dotnet missing")
        x = torch.randn(2, in_chans, 32, 36, generator=self.gen)
        xin, yout = os.path.join(self.tmp, "x.npy"), os.path.join(self.tmp, "y.npy")
        st_io.write_npy(xin, x.numpy().astype("<f4"))
        r = subprocess.run(["dotnet", dll, "infer", "--model-config", os.path.join(out, "config.json"),
                            "--weights", os.path.join(out, "weights.safetensors"), "--input", xin, "--output", yout],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, f"slak infer failed ({what}, seed {SEED}):\n{r.stdout}\n{r.stderr}")
        got = torch.from_numpy(np.load(yout)).double()
        with torch.no_grad():
            want = model.double()(x.double())
        model.float()
        self.assertEqual(tuple(got.shape), tuple(want.shape), what)
        err = (got - want).abs().max().item()
        scale = want.abs().max().item()
        self.assertLessEqual(err, 1e-4 * scale, f"{what}: logits differ by {err:.3g} (max |logit| {scale:.3g}, "
                                                f"seed {SEED})")

    def test_reference_layout_decom_bn_width_factor(self):
        cfg = dict(in_chans=3, num_classes=7, depths=[2, 1, 2, 1], dims=[8, 16, 16, 32], drop_path_rate=0.1,
                   layer_scale_init_value=1e-6, head_init_scale=1.0, kernel_size=[9, 7, 7, 5, 3], width_factor=1.3,
                   Decom=True, bn=True)
        model = self.build(**cfg)
        ema = self.build(**cfg)
        args = argparse.Namespace(model="SLaK_tiny", kernel_size=[9, 7, 7, 5, 3], width_factor=1.3, Decom=True,
                                  bn=True, nb_classes=7, drop_path=0.1, layer_scale_init_value=1e-6,
                                  head_init_scale=1.0, sparse=True)
        ckpt = {"model": {"module." + k: v for k, v in model.state_dict().items()}, "model_ema": ema.state_dict(),
                "optimizer": {"state": {}}, "epoch": 5, "args": args}
        got, out, lines = self.convert(ckpt)
        self.assertEqual(got["dims"], [10, 20, 20, 41], f"truncated real widths expected\n" + "\n".join(lines))
        self.assertEqual(got["width_factor"], 1.0)
        self.assertEqual(got["depths"], [2, 1, 2, 1])
        self.assertEqual(got["kernel_size"], [9, 7, 7, 5, 3])
        self.assertTrue(got["Decom"] and got["bn"])
        self.assertTrue(any("stripped" in l for l in lines), lines)
        self.check_infer(model, out, 3, "model entry")
        _, out_ema, _ = self.convert(ckpt, use_ema=True)
        self.check_infer(ema, out_ema, 3, "model_ema entry")

    def test_unloadable_args_historical_names_no_bn(self):
        cfg = dict(in_chans=1, num_classes=4, depths=[1, 1, 1, 1], dims=[8, 8, 16, 16], drop_path_rate=0.0,
                   layer_scale_init_value=0.0, head_init_scale=1.0, kernel_size=[7, 5, 5, 5, 3], width_factor=1.0,
                   Decom=True, bn=False)
        model = self.build(**cfg)
        # args of a class from a module the converting machine lacks (the SLaK repo's own types).
        fake = types.ModuleType("slak_repo_only_module")

        class TrainArgs:
            pass

        TrainArgs.__module__ = fake.__name__
        TrainArgs.__qualname__ = "TrainArgs"
        fake.TrainArgs = TrainArgs
        sys.modules[fake.__name__] = fake
        try:
            a = TrainArgs()
            a.kernel_size = [7, 5, 5, 5, 3]
            a.Decom = True
            sd = {k.replace(".LoRA1.", ".Decom1.").replace(".LoRA2.", ".Decom2."): v
                  for k, v in model.state_dict().items()}
            path = os.path.join(self.tmp, "in.pth")
            torch.save({"model": sd, "args": a, "epoch": "best"}, path)
        finally:
            del sys.modules[fake.__name__]
        lines = []
        got = conv.convert(path, os.path.join(self.tmp, "out"), log=lines.append)
        text = "\n".join(lines)
        self.assertIn("stub", text)
        self.assertIn("Decom1/Decom2", text)
        self.assertEqual(got["layer_scale_init_value"], 0.0, text)
        self.assertFalse(got["bn"])
        self.assertEqual(got["kernel_size"], [7, 5, 5, 5, 3])
        self.check_infer(model, os.path.join(self.tmp, "out"), 1, "stub args, Decom1/2 names, bn=False")

    def test_bare_state_dict_dense_without_small_conv(self):
        cfg = dict(in_chans=3, num_classes=5, depths=[1, 1, 1, 1], dims=[8, 8, 16, 16], drop_path_rate=0.0,
                   layer_scale_init_value=1e-6, head_init_scale=1.0, kernel_size=[5, 5, 3, 3, 3], width_factor=1.0,
                   Decom=False, bn=True)
        model = self.build(**cfg)
        got, out, lines = self.convert({"backbone." + k: v for k, v in model.state_dict().items()})
        self.assertFalse(got["Decom"])
        self.assertEqual(got["kernel_size"], [5, 5, 3, 3, 3], "\n".join(lines))
        self.check_infer(model, out, 3, "bare dense state dict")

    def test_rejects_non_slak(self):
        path = os.path.join(self.tmp, "bad.pth")
        torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, path)
        with self.assertRaisesRegex(conv.ConversionError, "downsample_layers.0.0.weight"):
            conv.convert(path, os.path.join(self.tmp, "out"), log=lambda s: None)
        torch.save([1, 2], path)
        with self.assertRaisesRegex(conv.ConversionError, "expected a dict"):
            conv.convert(path, os.path.join(self.tmp, "out"), log=lambda s: None)


if __name__ == "__main__":
    unittest.main()
