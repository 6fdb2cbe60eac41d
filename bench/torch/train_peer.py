#!/usr/bin/python3
"""PyTorch peer of the `train-vs-torch` comparison program (bench/Slak.Bench/Train/TrainVsTorch.cs).

The same architecture as the project's slak_nano / slak_nano64 presets, built from tools/slak_reference_model.py
(the plain-PyTorch twin of the reference model: dense depthwise convolutions by nn.Conv2d), trained on random
images and labels with AdamW; the masked weights (state_dict keys given by --masked, random masks at --density)
are multiplied by their masks after every optimizer step, as the reference code does. torch.set_num_threads(--threads).

Prints:
    step_ms <median ms of one training step over --steps steps after --warmup>
    op <category> <ms per step>          (torch.profiler self CPU time over --profile-steps steps, by category)
Categories match the C# program's: gemm, conv, dwconv, gelu, layernorm, batchnorm, optimizer, other.
Run with Debian's /usr/bin/python3 (python3-torch).
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from slak_reference_model import SLaK  # noqa: E402

PRESETS = {
    # ModelPresets.cs: widths [24, 48, 96, 192] x 1.3, depths 2, decomposed kernels with short side 3 (last entry).
    "slak_nano": dict(kernel_size=[15, 9, 5, 5, 3], size=32),
    "slak_nano64": dict(kernel_size=[31, 15, 7, 5, 3], size=64),
}


def category(name, shapes):
    if name in ("aten::addmm", "aten::mm", "aten::bmm", "aten::matmul"):
        return "gemm"
    if "convolution" in name or "conv2d" in name or "conv_depthwise" in name:
        # forward ops: (input, weight, ...); convolution_backward: (grad_output, input, weight, ...). Depthwise:
        # weight (C, 1, kh, kw) on an input of C > 1 channels (the stem's weight is (C, 1, 4, 4) on 1 channel).
        four = [s for s in shapes if isinstance(s, list) and len(s) == 4]
        for x, w in zip(four, four[1:]):
            if w[1] == 1 and w[0] > 1 and x[1] == w[0]:
                return "dwconv"
        return "conv"
    if "gelu" in name:
        return "gelu"
    if "layer_norm" in name:
        return "layernorm"
    if "batch_norm" in name:
        return "batchnorm"
    if "adam" in name or "_foreach" in name:
        return "optimizer"
    return "other"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", required=True, choices=sorted(PRESETS))
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--profile-steps", type=int, default=3)
    ap.add_argument("--density", type=float, default=0.6)
    ap.add_argument("--masked", default="", help="comma-separated state_dict keys of the masked weights")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    p = PRESETS[a.preset]
    model = SLaK(in_chans=1, num_classes=10, depths=[2, 2, 2, 2], dims=[24, 48, 96, 192],
                 kernel_size=p["kernel_size"], width_factor=1.3, Decom=True, bn=True).train()
    params = dict(model.named_parameters())
    masks = {}
    for key in filter(None, a.masked.split(",")):
        if key not in params:
            sys.exit(f"train_peer: masked key {key!r} is not a parameter of the model")
        masks[key] = (torch.rand(params[key].shape) < a.density).float()
    with torch.no_grad():
        for k, m in masks.items():
            params[k].mul_(m)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    x = torch.rand(a.batch, 1, p["size"], p["size"])
    y = torch.randint(0, 10, (a.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for k, m in masks.items():
                params[k].mul_(m)

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    print(f"step_ms {statistics.median(times):.3f}")

    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(a.profile_steps):
            step()
    totals = {}
    for e in prof.events():
        c = category(e.name, e.input_shapes or [])
        totals[c] = totals.get(c, 0.0) + e.self_cpu_time_total / 1e3
    for c, ms in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"op {c} {ms / a.profile_steps:.3f}")


if __name__ == "__main__":
    main()
