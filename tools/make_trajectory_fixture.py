"""Writes the training-trajectory fixture: 20 optimizer steps of a small SLaK trained by stock PyTorch in float64
(issue 26), which `slak train` in its trajectory mode must reproduce step by step.

Regenerate (about a minute):  /usr/bin/python3 tools/make_trajectory_fixture.py
Needs Debian's python3-torch and dataset-fashion-mnist (the first 160 training images are used).

Output under tests/TestData/trajectory/:
  config.json         the model (`slak infer` / `slak train --model-config` format): in_chans 1, num_classes 10,
                      depths [1,1,1,1], dims [8,16,16,24], kernel [7,5,5,5,3] (every stage has LoRA1 (K,3), LoRA2
                      (3,K) and small_conv 3x3, each with BatchNorm), Decom, bn, layer scale 0.5 (not 1e-6, so that
                      the blocks' own weights matter for the loss), drop path 0.
  init.safetensors    the initial state_dict (F32; num_batches_tracked I64) with the masks as U8 `mask.<name>` for
                      every 2-D/4-D parameter (Bernoulli(0.6) each; the masked weights are already 0, as the
                      reference's Masking leaves them after its init).
  data.npz            `images` float32 (160, 1, 32, 32): Fashion-MNIST train images 0..159, scaled to [0, 1],
                      zero-padded 28 -> 32 and normalised with mean 0.2860, std 0.3530 (what `slak train` does);
                      `labels` int64 (160).
  expected.json       the recipe (hyper-parameters), and per optimizer step k = 1..20 the loss of the step's batch
                      and the learning rate used, from the float64 run; plus schedule cases (below).
  final.safetensors   the float64 state_dict after the 20 steps (F64; num_batches_tracked I64).
  final_short.safetensors  the same after the short run: the first 40 images only (`slak train --limit 40`), so
                      5 steps with a warmup of floor(0.25 x 5) = 1 step (for the slower cuda-emu test); its losses
                      and lrs are `steps_short` in expected.json.

The run (the reference recipe, slak-facts sections 2.4 and 3): batch 8, batches in file order (no shuffle, no
augmentation, no mixup, no drop path, no EMA), 1 epoch = 20 steps; torch.optim.AdamW with betas (0.9, 0.999),
eps 1e-8, lr 4e-3, two parameter groups (weight decay 0.05 on every parameter except 1-D ones and `.bias`, 0 on
those); the learning rate of step k is cosine_scheduler(...)[k - 1] (below) with min_lr 1e-6 and warmup 0.25 epoch
= 5 steps; loss F.cross_entropy(label_smoothing=0.1) averaged over the batch; model in training mode, so every
nn.BatchNorm2d normalises with batch statistics and updates running_mean / running_var (unbiased batch variance)
with momentum 0.1 and counts num_batches_tracked; after each optimizer.step() the masks are re-applied (weight *=
mask), the reference's Masking.step() with fixed masks (update frequency 0). Live weights follow the same trajectory
under both of our sparse semantics (AdamW is element-wise), so one fixture serves both.

cosine_scheduler is re-implemented here from the reference's description (utils.py of ConvNeXt / SLaK): warmup_iters
= warmup_epochs * niter_per_ep, replaced by warmup_steps when that is > 0; the warmup is
numpy.linspace(start_warmup_value, base_value, warmup_iters) (endpoint included); then for i = 0 .. n-1 with
n = epochs * niter_per_ep - warmup_iters: final + 0.5 (base - final) (1 + cos(pi i / n)). The reference's
warmup_epochs is an integer; Slak accepts fractional epochs and rounds warmup_epochs * niter_per_ep DOWN (floor),
which is what this function does with a fractional product. `schedule_cases` in expected.json hold whole schedules
of a few (epochs, steps per epoch, warmup) combinations for a step-by-step test of Slak's CosineSchedule.
"""
import gzip
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from slak_reference_model import SLaK  # noqa: E402
from st_io import write_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "TestData", "trajectory")
FASHION = "/usr/share/datasets/fashion-mnist"

CONFIG = dict(in_chans=1, num_classes=10, depths=[1, 1, 1, 1], dims=[8, 16, 16, 24], drop_path_rate=0.0,
              layer_scale_init_value=0.5, head_init_scale=1.0, kernel_size=[7, 5, 5, 5, 3], width_factor=1.0,
              Decom=True, bn=True)
RECIPE = dict(images=160, batch_size=8, epochs=1, lr=4e-3, min_lr=1e-6, warmup_epochs=0.25, weight_decay=0.05,
              smoothing=0.1, density=0.6, betas=[0.9, 0.999], eps=1e-8, mean=0.2860, std=0.3530, seed=2026)
SHORT_IMAGES = 40
SCHEDULE_CASES = [
    dict(base=4e-3, final=1e-6, epochs=1, niter_per_ep=20, warmup_epochs=0.25, warmup_steps=-1),
    dict(base=4e-3, final=1e-6, epochs=3, niter_per_ep=7, warmup_epochs=1, warmup_steps=-1),
    dict(base=1e-3, final=0.0, epochs=2, niter_per_ep=10, warmup_epochs=0.55, warmup_steps=-1),  # 5.5 -> 5
    dict(base=2e-3, final=1e-5, epochs=2, niter_per_ep=9, warmup_epochs=0, warmup_steps=-1),
    dict(base=2e-3, final=1e-5, epochs=2, niter_per_ep=9, warmup_epochs=1, warmup_steps=4),
    dict(base=5e-4, final=1e-6, epochs=4, niter_per_ep=5, warmup_epochs=0.2, warmup_steps=1),  # linspace(.., 1) = [0]
]


def cosine_scheduler(base_value, final_value, epochs, niter_per_ep, warmup_epochs=0, start_warmup_value=0,
                     warmup_steps=-1):
    """The reference's per-iteration schedule (see the module docstring), one value per optimizer step."""
    warmup_iters = int(math.floor(warmup_epochs * niter_per_ep))
    if warmup_steps > 0:
        warmup_iters = warmup_steps
    warmup = np.linspace(start_warmup_value, base_value, warmup_iters) if warmup_iters > 0 else np.array([])
    n = epochs * niter_per_ep - warmup_iters
    main = np.array([final_value + 0.5 * (base_value - final_value) * (1 + math.cos(math.pi * i / n))
                     for i in range(n)])
    schedule = np.concatenate((warmup, main))
    assert len(schedule) == epochs * niter_per_ep
    return schedule


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    dims = [struct.unpack(">I", data[4 + 4 * i:8 + 4 * i])[0] for i in range(magic & 0xFF)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def load_data():
    n = RECIPE["images"]
    images = read_idx(os.path.join(FASHION, "train-images-idx3-ubyte.gz"))[:n].astype(np.float32) / np.float32(255)
    labels = read_idx(os.path.join(FASHION, "train-labels-idx1-ubyte.gz"))[:n].astype(np.int64)
    padded = np.zeros((n, 1, 32, 32), dtype=np.float32)
    padded[:, 0, 2:30, 2:30] = images
    normalised = (padded - np.float32(RECIPE["mean"])) / np.float32(RECIPE["std"])
    return normalised.astype(np.float32), labels


def build(seed):
    torch.manual_seed(seed)
    model = SLaK(**CONFIG)
    gen = torch.Generator().manual_seed(seed + 1)
    masks = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim in (2, 4):
                m = (torch.rand(p.shape, generator=gen) < RECIPE["density"]).to(torch.uint8)
                masks[name] = m
                p.mul_(m.to(p.dtype))
    return model, masks


def train(model, masks, images, labels, dtype, count=None):
    """The fixed-mask reference run on the first `count` images (None: all); returns per-step (loss, lr) and the
    final state_dict."""
    if count is not None:
        images, labels = images[:count], labels[:count]
    model = model.to(dtype).train()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim == 1 or name.endswith(".bias") else decay).append(p)
    opt = torch.optim.AdamW([dict(params=decay, weight_decay=RECIPE["weight_decay"]),
                             dict(params=no_decay, weight_decay=0.0)],
                            lr=RECIPE["lr"], betas=tuple(RECIPE["betas"]), eps=RECIPE["eps"])
    bs = RECIPE["batch_size"]
    steps_per_epoch = len(labels) // bs
    schedule = cosine_scheduler(RECIPE["lr"], RECIPE["min_lr"], RECIPE["epochs"], steps_per_epoch,
                                RECIPE["warmup_epochs"])
    params = dict(model.named_parameters())
    x_all = torch.from_numpy(images).to(dtype)
    y_all = torch.from_numpy(labels)
    records = []
    for it in range(RECIPE["epochs"] * steps_per_epoch):
        b = it % steps_per_epoch
        lr = float(schedule[it])
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = x_all[b * bs:(b + 1) * bs], y_all[b * bs:(b + 1) * bs]
        loss = F.cross_entropy(model(x), y, label_smoothing=RECIPE["smoothing"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for name, m in masks.items():
                params[name].mul_(m.to(dtype))
        records.append(dict(step=it + 1, loss=float(loss), lr=lr))
    return records, {k: v.detach().clone() for k, v in model.state_dict().items()}


def rel_l2(a, b):
    a, b = a.double(), b.double()
    return float((a - b).norm() / max(float(b.norm()), 1e-30))


def main():
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    images, labels = load_data()
    model, masks = build(RECIPE["seed"])
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}

    records, final = train(model, masks, images, labels, torch.float64)
    # The short run (for the slower cuda-emu device): the first 40 images, so 5 steps in the one epoch and a warmup
    # of floor(0.25 x 5) = 1 step, i.e. linspace(0, lr, 1) = [0], then a cosine over 4 steps.
    short_model, _ = build(RECIPE["seed"])
    records_short, final_short = train(short_model, masks, images, labels, torch.float64, count=SHORT_IMAGES)
    # The same run in float32 PyTorch: how far plain float32 rounding moves a trajectory (sets expectations for
    # the tolerances of the C# test; printed, not stored).
    model32, _ = build(RECIPE["seed"])
    rec32, final32 = train(model32, masks, images, labels, torch.float32)
    loss_dev = max(abs(a["loss"] - b["loss"]) / abs(b["loss"]) for a, b in zip(rec32, records))
    state_dev = max(rel_l2(final32[k], final[k]) for k in final if final[k].dtype.is_floating_point)
    print(f"float32 PyTorch vs float64: max loss rel diff {loss_dev:.2e}, max final tensor rel L2 {state_dev:.2e}")
    for k in final:
        if not k.endswith("num_batches_tracked"):
            assert torch.isfinite(final[k]).all(), k
    for name, m in masks.items():
        assert (final[name][m == 0] == 0).all(), f"{name}: a pruned weight is not 0"

    tensors = [(k, v if k.endswith("num_batches_tracked") else v.float()) for k, v in init.items()]
    tensors += [(f"mask.{k}", m) for k, m in masks.items()]
    write_safetensors(os.path.join(OUT, "init.safetensors"), tensors, metadata={"format": "pt"})
    for name, state in (("final.safetensors", final), ("final_short.safetensors", final_short)):
        write_safetensors(os.path.join(OUT, name),
                          [(k, v if k.endswith("num_batches_tracked") else v.double()) for k, v in state.items()],
                          metadata={"format": "pt"})
    tmp = os.path.join(OUT, ".tmp-data.npz")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, images=images, labels=labels)
    os.replace(tmp, os.path.join(OUT, "data.npz"))

    cases = []
    for c in SCHEDULE_CASES:
        s = cosine_scheduler(c["base"], c["final"], c["epochs"], c["niter_per_ep"], c["warmup_epochs"],
                             warmup_steps=c["warmup_steps"])
        cases.append(dict(c, values=[float(v) for v in s]))
    expected = dict(recipe=RECIPE, steps=records, short_images=SHORT_IMAGES, steps_short=records_short,
                    schedule_cases=cases,
                    live_weights=int(sum(int(m.sum()) for m in masks.values())),
                    masked_weights=int(sum(m.numel() for m in masks.values())))
    for name, obj in (("config.json", CONFIG), ("expected.json", expected)):
        path = os.path.join(OUT, name)
        with open(path + ".tmp", "w", encoding="utf-8", newline="\n") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")
        os.replace(path + ".tmp", path)
    size = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(records)} steps, loss {records[0]['loss']:.6f} -> {records[-1]['loss']:.6f}; "
          f"{sum(p.numel() for p in model.parameters())} parameters, density "
          f"{expected['live_weights'] / expected['masked_weights']:.3f} over {len(masks)} masked tensors; "
          f"{size} bytes in {OUT}")


if __name__ == "__main__":
    main()
