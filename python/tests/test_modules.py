"""slak_torch.DecomposedDepthwiseConv2d and slak_torch.replace_large_kernels on the reference SLaK architecture
(tools/slak_reference_model.py): the replaced model's logits and every parameter gradient equal the stock model's
within fp32 tolerance, a few training steps (SGD with momentum and weight decay; masks re-applied after each, as the
reference does) follow the same trajectory, fuse() keeps the eval outputs, state_dict keys and Parameter objects are
kept.

The trajectory uses SGD, not AdamW: AdamW divides each gradient by its own running magnitude, so where a gradient is
within float32 rounding of zero the update swings by up to lr whatever the operator (d update / d grad reaches lr/eps),
and two exact-to-rounding operators can end 1e-5 apart on a few weights (seed 5 did, with either CPU depthwise path).
SGD's update is linear in the gradient, so the comparison after three steps checks the operator, not AdamW's
conditioning.

The layer scale (gamma, 1e-6 at init) is set to 1 so that the large kernels visibly shape the logits; otherwise the
blocks' contributions are below float32 resolution and any operator would pass.
"""
import copy
import io
import os
import random
import sys
import unittest

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
try:
    import slak_torch  # the installed package (pip install ./python), or PYTHONPATH=python
except ImportError:
    sys.path.insert(0, os.path.join(HERE, ".."))
    import slak_torch  # noqa: E402
from slak_reference_model import SLaK  # noqa: E402

SEED = int(os.environ.get("SLAK_TEST_SEED", random.randrange(1 << 30)))
TOL = 2e-5  # relative to the largest magnitude of the compared tensor (float32, a few hundred accumulations)


def reference_model(density=0.6, small=True):
    torch.manual_seed(SEED)
    model = SLaK(in_chans=1, num_classes=10, depths=[1, 2, 1, 1], dims=[8, 12, 16, 24],
                 kernel_size=[13, 11, 7, 5, 3 if small else 13], width_factor=1.0, Decom=True, bn=True)
    gen = torch.Generator().manual_seed(SEED + 1)
    masks = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".gamma"):
                p.fill_(1.0)
            if name.endswith((".LoRA1.conv.weight", ".LoRA2.conv.weight")):
                masks[name] = (torch.rand(p.shape, generator=gen) < density).float()
                p.mul_(masks[name])
        for m in model.modules():  # non-trivial BatchNorm statistics and affine parameters for eval and fuse()
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.uniform_(-0.5, 0.5, generator=gen)
    return model, masks


def close(tc, got, ref, what, tol=TOL):
    scale = ref.abs().max().item() or 1.0
    err = (got.double() - ref.double()).abs().max().item()
    tc.assertLessEqual(err, tol * scale, f"{what}: max error {err:.3g} > {tol} x {scale:.3g} (seed {SEED})")


class ReplaceLargeKernelsTest(unittest.TestCase):
    def setUp(self):
        self.stock, self.masks = reference_model()
        self.replaced = copy.deepcopy(self.stock)
        masks_copy = {k: v.clone() for k, v in self.masks.items()}
        slak_torch.replace_large_kernels(self.replaced, masks_copy)
        gen = torch.Generator().manual_seed(SEED + 2)
        self.x = torch.randn(4, 1, 40, 36, generator=gen)
        self.labels = torch.randint(0, 10, (4,), generator=gen)

    def test_structure_kept(self):
        blocks = [m for m in self.replaced.modules() if isinstance(m, slak_torch.DecomposedDepthwiseConv2d)]
        self.assertEqual(len(blocks), 5)
        self.assertEqual(list(self.stock.state_dict()), list(self.replaced.state_dict()))
        block = self.replaced.stages[0][0].large_kernel
        self.assertIs(block.LoRA1.conv.weight, self.replaced.stages[0][0].large_kernel.LoRA1.conv.weight)
        self.assertTrue(torch.equal(block.LoRA1.mask, self.masks["stages.0.0.large_kernel.LoRA1.conv.weight"]))
        self.assertTrue(torch.equal(block.small_conv.mask, torch.ones_like(block.small_conv.mask)))
        self.assertIsInstance(block.LoRA1.bn, torch.nn.BatchNorm2d)

    def test_logits_and_all_gradients_match(self):
        for mode in ("train", "eval"):
            self.stock.train(mode == "train")
            self.replaced.train(mode == "train")
            outs = []
            for model in (self.stock, self.replaced):
                model.zero_grad(set_to_none=True)
                logits = model(self.x)
                F.cross_entropy(logits, self.labels).backward()
                outs.append((logits, {n: p.grad for n, p in model.named_parameters()}))
            (ls, gs), (lr, gr) = outs
            close(self, lr, ls, f"{mode} logits")
            self.assertEqual(set(gs), set(gr))
            for name in gs:
                self.assertIsNotNone(gr[name], f"{mode}: no gradient for {name}")
                close(self, gr[name], gs[name], f"{mode} gradient of {name}", tol=1e-4)

    def test_training_steps_match(self):
        for sparse in (False, True):
            with self.subTest(sparse_weight_grad=sparse):
                self.setUp()
                if sparse:
                    self.replaced = slak_torch.replace_large_kernels(copy.deepcopy(self.stock), self.masks,
                                                                     sparse_weight_grad=True)
                self.check_training_steps()

    def check_training_steps(self):
        params = {}
        for model in (self.stock, self.replaced):
            model.train()
            params[id(model)] = dict(model.named_parameters())
        opts = [torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=0.05)
                for m in (self.stock, self.replaced)]
        for step in range(3):
            losses = []
            for model, opt in zip((self.stock, self.replaced), opts):
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(self.x), self.labels)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    for name, m in self.masks.items():
                        params[id(model)][name].mul_(m)
                losses.append(loss.item())
            self.assertAlmostEqual(losses[0], losses[1], delta=1e-5 * max(1.0, abs(losses[0])),
                                   msg=f"loss at step {step} (seed {SEED})")
        for (name, a), b in zip(self.stock.state_dict().items(), self.replaced.state_dict().values()):
            if a.dtype.is_floating_point:
                close(self, b, a, f"{name} after 3 steps", tol=1e-4)

    def test_sparse_weight_grad(self):
        sparse = slak_torch.replace_large_kernels(copy.deepcopy(self.stock), self.masks, sparse_weight_grad=True)
        grads = []
        for model in (self.stock, sparse):
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(self.x), self.labels).backward()
            grads.append({n: p.grad for n, p in model.named_parameters()})
        for name, g in grads[0].items():
            expect = g * self.masks[name] if name in self.masks else g
            close(self, grads[1][name], expect, f"sparse weight gradient of {name}", tol=1e-4)
            if name in self.masks:
                self.assertTrue((grads[1][name][self.masks[name] == 0] == 0).all().item(), name)

    def test_fuse_keeps_eval_outputs(self):
        self.stock.eval()
        fused = slak_torch.replace_large_kernels(copy.deepcopy(self.stock), self.masks, fuse=True)
        with torch.no_grad():
            close(self, fused(self.x), self.stock(self.x), "fused eval logits")
        block = fused.stages[0][0].large_kernel
        self.assertTrue(block.fused)
        self.assertEqual(tuple(block.fused_weight.shape[2:]), (13, 13))
        # The fused union kernel is zero outside the union of the masks.
        self.assertTrue((block.fused_weight[block.fused_mask == 0] == 0).all().item())

    def test_module_scripts_and_exports(self):
        block = slak_torch.DecomposedDepthwiseConv2d(6, 9, 3).eval()
        x = torch.randn(2, 6, 10, 12)
        with torch.no_grad():
            ref = block(x)
            scripted = torch.jit.script(block)
            buf = io.BytesIO()
            torch.jit.save(scripted, buf)
            buf.seek(0)
            close(self, torch.jit.load(buf)(x), ref, "scripted module after save/load")
            block.fuse()
            close(self, block(x), ref, "fused module")
            close(self, torch.jit.script(block)(x), ref, "scripted fused module")

    def test_rejects_a_model_without_large_kernels(self):
        with self.assertRaisesRegex(ValueError, "no reference large-kernel module"):
            slak_torch.replace_large_kernels(torch.nn.Sequential(torch.nn.Conv2d(2, 2, 3)))


if __name__ == "__main__":
    unittest.main()
