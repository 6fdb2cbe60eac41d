"""Writes the PyTorch logits-parity fixtures for `slak infer` (issue 3 item 3).

Regenerate (seconds):  /usr/bin/python3 tools/make_infer_fixture.py
Output, one folder per fixture under tests/TestData/infer/:
  config.json        constructor arguments of tools/slak_reference_model.SLaK, exactly the keys
                     in_chans, num_classes, depths, dims, drop_path_rate, layer_scale_init_value, head_init_scale,
                     kernel_size, width_factor, Decom, bn   (dims are the BASE dims; the model applies width_factor)
  weights.safetensors  the whole state_dict under the reference names, in state_dict order: F32 tensors and the
                     BatchNorm `num_batches_tracked` counters as 0-d I64; metadata {"format": "pt", "fixture": name}
  input.npy          float32 (N, C, H, W), C order
  logits.npy         float32 (N, num_classes): PyTorch float32 forward in eval mode
  logits_f64.npy     float64 (N, num_classes): the same model and input run in float64 (the float32 weights and
                     input widened exactly), the better reference for a float32 re-implementation

Fixtures (why these sizes): the reference model always downsamples by 4 * 2 * 2 * 2 = 32, so a 28x28 image is too
small (28 -> 7 -> 3 -> 1 -> 0 fails at the last 2x2 conv). The inputs are therefore >= 32 pixels; a 28x28
Fashion-MNIST image would have to be padded, or the C# small presets need another stem.
  decom_bn   in_chans 1, num_classes 10, depths [2,1,1,1], dims [8,16,16,32] x width 1.3 -> [10,20,20,41] (odd
             widths, truncation), kernel [7,7,5,5,3] (LoRA1 (K,3), LoRA2 (3,K), small_conv 3x3 in every stage),
             Decom=True, bn=True, gamma present. Input (3, 1, 36, 40): non-square on purpose, so a swapped H/W or a
             swapped (K,N)/(N,K) branch shows; feature maps 9x10 -> 4x5 -> 2x2 -> 1x1 (floor in the stride-2 convs,
             kernels larger than the maps). About 40 % of every 2-D/4-D weight is set to exactly 0, like a sparse
             checkpoint.
  dense_nobn in_chans 3, num_classes 5, depths [1,1,1,1], dims [8,8,16,16], width 1.0, kernel [5,5,3,3,3]
             (stages 0-1: lkb_origin 5x5 + small_conv 3x3; stages 2-3: K = N = 3, so NO small_conv), Decom=False,
             bn=False (branches are bare convs), layer_scale_init_value 0 (so NO gamma keys). Input (2, 3, 32, 32).
Every parameter and buffer is randomised (not the init values: gamma 1e-6 or BN identity stats would hide bugs):
conv/linear weights N(0, 1/fan_in), biases N(0, 0.1^2), LN/BN weights U(0.5, 1.5), BN running_mean N(0, 0.2^2),
running_var log-uniform in [1e-3, 2], gamma U(0.3, 1), num_batches_tracked random ints. Seeds fixed.
In decom_bn the stem conv is further scaled by 0.01, so the stem LayerNorm sees a per-pixel variance near 1e-4 and
its eps (1e-6) matters, as do the BN eps (1e-5) on the small running variances: the wrong eps moves the logits
well past 1e-4 relative (checked when the fixture was made).
"""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from slak_reference_model import SLaK  # noqa: E402
from st_io import write_npy, write_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "TestData", "infer")

KEYS = ["in_chans", "num_classes", "depths", "dims", "drop_path_rate", "layer_scale_init_value", "head_init_scale",
        "kernel_size", "width_factor", "Decom", "bn"]

FIXTURES = {
    "decom_bn": dict(
        config=dict(in_chans=1, num_classes=10, depths=[2, 1, 1, 1], dims=[8, 16, 16, 32], drop_path_rate=0.1,
                    layer_scale_init_value=1e-6, head_init_scale=1.0, kernel_size=[7, 7, 5, 5, 3], width_factor=1.3,
                    Decom=True, bn=True),
        input_shape=(3, 1, 36, 40), zero_fraction=0.4, stem_scale=0.01, seed=1234),
    "dense_nobn": dict(
        config=dict(in_chans=3, num_classes=5, depths=[1, 1, 1, 1], dims=[8, 8, 16, 16], drop_path_rate=0.0,
                    layer_scale_init_value=0.0, head_init_scale=1.0, kernel_size=[5, 5, 3, 3, 3], width_factor=1.0,
                    Decom=False, bn=False),
        input_shape=(2, 3, 32, 32), zero_fraction=0.0, stem_scale=1.0, seed=4321),
}


def randomise(model, zero_fraction, stem_scale, gen):
    with torch.no_grad():
        for name, t in model.state_dict().items():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "num_batches_tracked":
                t.fill_(int(torch.randint(0, 1000, (1,), generator=gen)))
            elif t.ndim >= 2:  # conv / linear weight
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=gen) / math.sqrt(fan_in))
                if zero_fraction > 0:
                    t.mul_((torch.rand(t.shape, generator=gen) >= zero_fraction).to(t.dtype))
            elif leaf == "gamma":
                t.copy_(0.3 + 0.7 * torch.rand(t.shape, generator=gen))
            elif leaf == "running_mean":
                t.copy_(0.2 * torch.randn(t.shape, generator=gen))
            elif leaf == "running_var":  # log-uniform in [1e-3, 2]: small variances make BN eps matter
                t.copy_(torch.exp(math.log(1e-3) + math.log(2e3) * torch.rand(t.shape, generator=gen)))
            elif leaf == "weight":  # LayerNorm / BatchNorm scale
                t.copy_(0.5 + torch.rand(t.shape, generator=gen))
            elif leaf == "bias":
                t.copy_(0.1 * torch.randn(t.shape, generator=gen))
            else:
                raise ValueError(f"unhandled state_dict entry {name}")
        if stem_scale != 1.0:
            sd = model.state_dict()
            sd["downsample_layers.0.0.weight"].mul_(stem_scale)
            sd["downsample_layers.0.0.bias"].mul_(stem_scale)


def make(name, spec):
    cfg = spec["config"]
    assert list(cfg) == KEYS
    torch.manual_seed(spec["seed"])
    gen = torch.Generator().manual_seed(spec["seed"])
    model = SLaK(**cfg)
    randomise(model, spec["zero_fraction"], spec["stem_scale"], gen)
    model.eval()
    x = torch.randn(spec["input_shape"], generator=gen)
    with torch.no_grad():
        y32 = model(x)
        y64 = model.double()(x.double())
    model.float()
    rel = float(((y32.double() - y64).abs() / (y64.abs() + 1e-3)).max())
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    sd = model.state_dict()
    write_safetensors(os.path.join(folder, "weights.safetensors"), list(sd.items()),
                      metadata={"format": "pt", "fixture": name})
    cfg_path = os.path.join(folder, "config.json")
    with open(cfg_path + ".tmp", "w", encoding="utf-8", newline="\n") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    os.replace(cfg_path + ".tmp", cfg_path)
    write_npy(os.path.join(folder, "input.npy"), x.numpy().astype("<f4"))
    write_npy(os.path.join(folder, "logits.npy"), y32.numpy().astype("<f4"))
    write_npy(os.path.join(folder, "logits_f64.npy"), y64.numpy().astype("<f8"))
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    if size > 200_000:
        sys.exit(f"{name}: fixture is {size} bytes, over the 200 KB budget")
    print(f"{name}: {len(sd)} keys, {sum(p.numel() for p in model.parameters())} parameters, logits "
          f"{tuple(y32.shape)} range [{float(y64.min()):.3f}, {float(y64.max()):.3f}], "
          f"max rel diff f32 vs f64 {rel:.2e}, {size} bytes")


def main():
    for name, spec in FIXTURES.items():
        make(name, spec)


if __name__ == "__main__":
    main()
