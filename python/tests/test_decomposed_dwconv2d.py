"""Tests of torch.ops.slak.decomposed_dwconv2d / dwconv2d (through the C ABI) against torch's depthwise conv2d.

Run: PYTHONPATH=python SLAK_KERNELS_LIBRARY=<cmake build dir> /usr/bin/python3 -m unittest discover -s python/tests
(or, installed with pip, from any folder without PYTHONPATH). Every parity case runs on both CPU libraries: the C#
CPU engine (libslak_kernels_cpu.so, the default for CPU tensors) and the CUDA kernels on the host emulator
(libslak_kernels_emu.so, slak_torch.cpu_backend("emulator")); the CUDA case runs only when torch sees a GPU and
libslak_kernels.so (the nvcc build) loads.

float64: the kernels are float32 only (the operator raises TypeError for float64), so torch.autograd.gradcheck in
float64 is not applicable. Instead the gradients are checked (a) against conv2d's autograd in float64 and (b) by
central differences in float32: the operator is linear in x and in each weight, so (f(x + e v) - f(x - e v)) / 2e
equals the directional derivative exactly up to float32 rounding, for any e (e = 1 here).
"""
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

BACKENDS = ("cpu", "emulator")

SEED = int(os.environ.get("SLAK_TEST_SEED", random.randrange(1 << 30)))
RTOL = 1e-5  # relative to the largest reference magnitude (float32 accumulation of up to ~50 taps per output)


def reference(x, weights, masks):
    """float64 sum of torch depthwise convolutions with padding (kh//2, kw//2)."""
    y = 0
    for w, m in zip(weights, masks):
        we = w if m is None else w * m
        y = y + F.conv2d(x, we, padding=(w.shape[-2] // 2, w.shape[-1] // 2), groups=x.shape[1])
    return y


def close(testcase, got, ref, what):
    got, ref = got.double(), ref.double()
    testcase.assertEqual(got.shape, ref.shape, f"{what}: shape (seed {SEED})")
    if ref.numel() == 0:
        return
    scale = ref.abs().max().item() or 1.0
    err = (got - ref).abs().max().item()
    testcase.assertTrue(torch.isfinite(got).all().item(), f"{what}: non-finite values (seed {SEED})")
    testcase.assertLessEqual(err, RTOL * scale, f"{what}: max error {err:.3g} > {RTOL} x max|ref| {scale:.3g} "
                                                f"(seed {SEED})")


class DecomposedDwConv2dTest(unittest.TestCase):
    def setUp(self):
        self.gen = torch.Generator().manual_seed(SEED)

    def rand(self, *shape):
        return torch.randn(*shape, generator=self.gen)

    def mask(self, *shape, density=0.5):
        return (torch.rand(*shape, generator=self.gen) < density).float()

    def check_case(self, n, c, h, w, kl, ks, small=True, masked=True, device="cpu", density=0.5):
        if device != "cpu":
            self.check_one(n, c, h, w, kl, ks, small, masked, device, density)
            return
        for backend in BACKENDS:
            with self.subTest(backend=backend), slak_torch.cpu_backend(backend):
                self.check_one(n, c, h, w, kl, ks, small, masked, device, density, backend)

    def check_one(self, n, c, h, w, kl, ks, small, masked, device, density, backend="cuda"):
        what = f"n={n} c={c} h={h} w={w} kl={kl} ks={ks} small={small} masked={masked} density={density} {backend}"
        shapes = [(c, 1, kl, ks), (c, 1, ks, kl)] + ([(c, 1, ks, ks)] if small else [])
        x = self.rand(n, c, h, w).to(device).requires_grad_()
        ws = [self.rand(*s).to(device).requires_grad_() for s in shapes]
        ms = [self.mask(*s, density=density).to(device) if masked and i < 2 else None for i, s in enumerate(shapes)]
        y = slak_torch.decomposed_dwconv2d(x, *ws, masks=ms) if small else \
            slak_torch.decomposed_dwconv2d(x, ws[0], ws[1], masks=ms)
        g = self.rand(*y.shape).to(device)
        (y * g).sum().backward()

        x64 = x.detach().double().requires_grad_()
        w64 = [w.detach().double().requires_grad_() for w in ws]
        m64 = [m.double() if m is not None else None for m in ms]
        y64 = reference(x64, w64, m64)
        (y64 * g.double()).sum().backward()
        close(self, y, y64, f"forward {what}")
        close(self, x.grad, x64.grad, f"dx {what}")
        for i, (w, r) in enumerate(zip(ws, w64)):
            close(self, w.grad, r.grad, f"dw[{i}] {what}")
            if ms[i] is not None:
                self.assertTrue((w.grad[ms[i] == 0] == 0).all().item(), f"dw[{i}] nonzero at masked taps {what}")

    def test_three_branches_masked(self):
        self.check_case(2, 3, 12, 11, 9, 3)

    def test_two_branches_dense(self):
        self.check_case(1, 2, 9, 14, 7, 3, small=False, masked=False)

    def test_long_kernel_larger_than_image(self):
        self.check_case(1, 2, 6, 7, 13, 5)

    # The breaker shapes of issue 28: kernel larger than the map, 1 x 1 maps, batch 0, densities 1 / 0.6 / 0.
    def test_breaker_shapes_and_densities(self):
        for density in (1.0, 0.6, 0.0):
            for n, c, h, w, kl, ks in ((2, 3, 5, 4, 13, 3),    # kernel larger than the map both ways
                                       (3, 4, 1, 1, 7, 3),     # 1 x 1 maps
                                       (0, 3, 6, 6, 7, 3),     # batch 0
                                       (1, 5, 9, 12, 51, 5)):  # SLaK's 51 x 5 on a small map
                self.check_case(n, c, h, w, kl, ks, density=density)

    def test_noncontiguous_input(self):
        x = self.rand(1, 8, 2, 9).permute(0, 2, 1, 3)  # (1, 2, 8, 9), not contiguous
        self.assertFalse(x.is_contiguous())
        wl, ww = self.rand(2, 1, 5, 3), self.rand(2, 1, 3, 5)
        close(self, slak_torch.decomposed_dwconv2d(x, wl, ww), reference(x.double(), [wl.double(), ww.double()],
                                                                          [None, None]), "non-contiguous x")

    def test_single_branch(self):
        x = self.rand(2, 3, 7, 8).requires_grad_()
        w = self.rand(3, 1, 5, 3).requires_grad_()
        m = self.mask(3, 1, 5, 3)
        y = slak_torch.dwconv2d(x, w, m)
        g = self.rand(*y.shape)
        (y * g).sum().backward()
        x64, w64 = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
        y64 = reference(x64, [w64], [m.double()])
        (y64 * g.double()).sum().backward()
        close(self, y, y64, "single forward")
        close(self, x.grad, x64.grad, "single dx")
        close(self, w.grad, w64.grad, "single dw")

    def test_finite_differences_float32(self):
        x = self.rand(1, 2, 8, 9)
        ws = [self.rand(2, 1, 7, 3), self.rand(2, 1, 3, 7), self.rand(2, 1, 3, 3)]
        ms = [self.mask(2, 1, 7, 3), None, self.mask(2, 1, 3, 3)]
        g = self.rand(1, 2, 8, 9)

        def loss(xx, www):
            return (slak_torch.decomposed_dwconv2d(xx, *www, masks=ms).double() * g.double()).sum().item()

        xr = x.clone().requires_grad_()
        wr = [w.clone().requires_grad_() for w in ws]
        (slak_torch.decomposed_dwconv2d(xr, *wr, masks=ms) * g).sum().backward()
        eps = 1.0
        v = self.rand(*x.shape)
        fd = (loss(x + eps * v, ws) - loss(x - eps * v, ws)) / (2 * eps)
        an = (xr.grad.double() * v.double()).sum().item()
        self.assertAlmostEqual(fd, an, delta=1e-4 * max(1.0, abs(an)), msg=f"dx directional derivative (seed {SEED})")
        for i in range(3):
            v = self.rand(*ws[i].shape)
            plus = [w + eps * v if j == i else w for j, w in enumerate(ws)]
            minus = [w - eps * v if j == i else w for j, w in enumerate(ws)]
            fd = (loss(x, plus) - loss(x, minus)) / (2 * eps)
            an = (wr[i].grad.double() * v.double()).sum().item()
            self.assertAlmostEqual(fd, an, delta=1e-4 * max(1.0, abs(an)),
                                   msg=f"dw[{i}] directional derivative (seed {SEED})")

    def test_rejects_wrong_ranks_like_conv2d(self):
        x = self.rand(1, 2, 5, 5)
        for bad in (self.rand(2, 3, 1), self.rand(2, 1, 3, 1, 1)):
            with self.assertRaisesRegex(RuntimeError, "4-dimensional weight"):
                slak_torch.dwconv2d(x, bad)
            with self.assertRaises(RuntimeError):  # what conv2d itself says for the same weight
                F.conv2d(x, bad, groups=2)
        with self.assertRaisesRegex(RuntimeError, "4-dimensional input"):
            slak_torch.dwconv2d(self.rand(2, 5, 5), self.rand(2, 1, 3, 3))

    def test_rejects_bad_input(self):
        x = self.rand(1, 2, 5, 5)
        with self.assertRaisesRegex(TypeError, "float32"):
            slak_torch.decomposed_dwconv2d(x.double(), self.rand(2, 1, 3, 1).double(), self.rand(2, 1, 1, 3).double())
        with self.assertRaisesRegex(ValueError, "odd"):
            slak_torch.decomposed_dwconv2d(x, self.rand(2, 1, 4, 1), self.rand(2, 1, 1, 3))
        with self.assertRaisesRegex(ValueError, "C=2"):
            slak_torch.decomposed_dwconv2d(x, self.rand(3, 1, 3, 1), self.rand(3, 1, 1, 3))

    def test_c_abi_status_reaches_python(self):
        # Bypass the Python checks: an even kernel must come back from the C ABI as SlakError with its message.
        import ctypes
        from slak_torch import _lib
        for backend in BACKENDS:
            lib = _lib.load(backend)
            self.assertEqual(lib.backend, backend)
            p = _lib.DecomposedParams()
            p.n, p.c, p.h, p.w, p.num_branches = 1, 1, 4, 4, 1
            p.kh[0], p.kw[0] = 2, 3
            for d, st in enumerate((16, 16, 4, 1)):
                p.x_stride[d] = p.y_stride[d] = st
            size = ctypes.c_size_t()
            with self.assertRaisesRegex(slak_torch.SlakError, "INVALID_ARGUMENT.*kh=2"):
                lib.call("slak_decomposed_dwconv2d_workspace_size", ctypes.byref(p), ctypes.byref(size))

    def test_cpu_thread_count(self):
        before = slak_torch.get_num_threads()
        try:
            slak_torch.set_num_threads(1)
            self.assertEqual(slak_torch.get_num_threads(), 1)
            self.check_case(1, 3, 9, 8, 7, 3)
            with self.assertRaisesRegex(slak_torch.SlakError, "threads must be >= 1, got 0"):
                slak_torch.set_num_threads(0)
        finally:
            slak_torch.set_num_threads(before)
        # SLAK_NUM_THREADS is the default of a fresh process (read by the library at its first call).
        import subprocess
        code = "import slak_torch; print(slak_torch.get_num_threads())"
        env = dict(os.environ, SLAK_NUM_THREADS="3",
                   PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        self.assertEqual(out.stdout.strip(), "3", out.stderr)

    @unittest.skipUnless(torch.cuda.is_available(), "no CUDA device visible to torch")
    def test_cuda(self):
        try:
            slak_torch.load("cuda")
        except OSError as e:
            self.skipTest(f"libslak_kernels.so (nvcc build) not available: {e}")
        self.check_case(2, 8, 33, 40, 31, 5, device="cuda")


if __name__ == "__main__":
    unittest.main()
