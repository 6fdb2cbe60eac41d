"""Writes the reference state_dict key lists of the paper's SLaK presets as test fixtures.

Regenerate (about a minute on 2 cores, ~2 GB of RAM for SLaK-B):
    /usr/bin/python3 tools/make_state_dict_fixture.py
Output: tests/TestData/state_dict/slak_{tiny,small,base}.txt

Format: one line per state_dict entry, in state_dict order, `name<TAB>shape`, shape as comma-separated ints
(e.g. `stages.0.0.large_kernel.LoRA1.conv.weight\t124,1,51,5`); a 0-d tensor (BatchNorm num_batches_tracked) has an
empty shape (`name<TAB>`). No header, no comments, '\n' line ends, final newline.
Presets (slak-facts.md 1.2): width_factor 1.3, kernel_size [51, 49, 47, 13, 5], Decom=True, bn=True,
in_chans 3, num_classes 1000. The script checks the key counts (470 / 920 / 920), the dense parameter counts
(50.70 M / 91.13 M / 157.95 M) and some shapes given by the facts.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from slak_reference_model import preset  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "TestData", "state_dict")

EXPECT = {  # name: (keys, dense parameters in millions, some shapes)
    "slak_tiny": (470, 50.70, {
        "downsample_layers.0.0.weight": (124, 3, 4, 4),
        "stages.0.0.large_kernel.LoRA1.conv.weight": (124, 1, 51, 5),
        "stages.0.0.large_kernel.LoRA2.conv.weight": (124, 1, 5, 51),
        "stages.0.0.large_kernel.small_conv.conv.weight": (124, 1, 5, 5),
        "stages.0.0.pwconv1.weight": (496, 124),
        "stages.3.2.large_kernel.LoRA1.conv.weight": (998, 1, 13, 5),
        "stages.3.2.pwconv1.weight": (3992, 998),
        "downsample_layers.1.1.weight": (249, 124, 2, 2),
        "downsample_layers.3.1.weight": (998, 499, 2, 2),
        "head.weight": (1000, 998)}),
    "slak_small": (920, 91.13, {"stages.2.26.large_kernel.LoRA2.conv.weight": (499, 1, 5, 47)}),
    "slak_base": (920, 157.95, {"downsample_layers.0.0.weight": (166, 3, 4, 4), "head.weight": (1000, 1331),
                                "stages.3.2.gamma": (1331,)}),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    for name, (n_keys, mparams, shapes) in EXPECT.items():
        with torch.no_grad():
            model = preset(name)
        sd = model.state_dict()
        if len(sd) != n_keys:
            sys.exit(f"{name}: {len(sd)} keys, expected {n_keys}")
        got_m = sum(p.numel() for p in model.parameters()) / 1e6
        if abs(got_m - mparams) > 0.005:
            sys.exit(f"{name}: {got_m:.3f} M parameters, expected {mparams}")
        for key, shape in shapes.items():
            if tuple(sd[key].shape) != shape:
                sys.exit(f"{name}: {key} has shape {tuple(sd[key].shape)}, expected {shape}")
        lines = [f"{k}\t{','.join(str(d) for d in v.shape)}\n" for k, v in sd.items()]
        path = os.path.join(OUT, name + ".txt")
        with open(path + ".tmp", "w", encoding="utf-8", newline="\n") as f:
            f.writelines(lines)
        os.replace(path + ".tmp", path)
        print(f"{name}: {len(sd)} keys, {got_m:.2f} M parameters -> {os.path.relpath(path, ROOT)}")
        del model, sd


if __name__ == "__main__":
    main()
