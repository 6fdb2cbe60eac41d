#!/usr/bin/env python3
"""Converts an official SLaK checkpoint (VITA-Group/SLaK) into what Slak.Cuda loads: out_dir/weights.safetensors (the
state_dict under the reference names, in state_dict order) and out_dir/config.json (tools/slak_reference_model.SLaK's
constructor arguments; schema in src/Slak/Models/ModelConfig.cs).

    /usr/bin/python3 tools/convert_slak_checkpoint.py checkpoint-best-ema.pth out_dir/ [--ema] [--no-verify]
    slak infer --model-config out_dir/config.json --weights out_dir/weights.safetensors --input x.npy --output y.npy

What it accepts (docs/slak-facts.md section 7): a dict with `model` (default) or `model_ema` (--ema), or `state_dict`,
or a bare state dict; `module.` and `backbone.` prefixes stripped; the historical branch names `Decom1`/`Decom2`
renamed to `LoRA1`/`LoRA2`. Classes the pickle references but this machine lacks (the `args` of a checkpoint saved
with the SLaK repo importable, custom optimizers, ...) are loaded as inert stubs, so the tensors always come out.

The config is inferred from the tensor shapes, which always win (what `args` says is only used for the values that
shapes cannot tell, and any disagreement is reported):
  in_chans, dims   stem conv (d0, in_chans, 4, 4) and downsample convs (d_i, d_{i-1}, 2, 2). dims are written as the
                   REAL widths with width_factor 1.0: the reference truncates int(base * width_factor), and the widths
                   1.0 x real rebuild exactly, whereas base dims would need the original factor.
  depths           1 + the largest block index under stages.{s}.
  num_classes      head.weight (classes, d3).
  kernel_size      [K1..K4, N]: LoRA1 (C, 1, K, N) per stage when Decom, else lkb_origin (C, 1, K, K) and small_conv
                   (C, 1, N, N); without any small_conv, N = max K (so that no stage builds one).
  Decom, bn        presence of LoRA1 / of the branches' .bn.* entries.
  layer_scale_init_value  0 when no `gamma` exists (no layer scale), else args' value or 1e-6 (only the init value;
                   the stored gamma is loaded either way). drop_path_rate, head_init_scale: args or 0.0 / 1.0
                   (they do not change evaluation-mode logits).
Before writing, the converted state dict is checked key by key and shape by shape against tools/slak_reference_model.SLaK built
from the inferred config (--no-verify skips this; it costs a model construction).
Exit status: 0 on success, 1 with a message on an input it cannot convert.
"""
import argparse
import collections
import json
import os
import pickle
import re
import sys
import types

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st_io import write_safetensors  # noqa: E402

CONFIG_KEYS = ["in_chans", "num_classes", "depths", "dims", "drop_path_rate", "layer_scale_init_value",
               "head_init_scale", "kernel_size", "width_factor", "Decom", "bn"]


class ConversionError(Exception):
    pass


# ---- loading with stubs for classes this machine does not have ----

class _Stub:
    """Stands in for a pickled object whose class cannot be imported; keeps its state as attributes."""

    def __init__(self, *args, **kwargs):
        self._stub_args = args

    def __setstate__(self, state):
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self._stub_state = state


class _StubUnpickler(pickle.Unpickler):
    missing = []

    def find_class(self, module, name):
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            _StubUnpickler.missing.append(f"{module}.{name}")
            return type(name, (_Stub,), {"__module__": "stub." + module})


_stub_pickle = types.ModuleType("slak_stub_pickle")
_stub_pickle.__dict__.update({k: getattr(pickle, k) for k in dir(pickle) if not k.startswith("__")})
_stub_pickle.Unpickler = _StubUnpickler


def load_checkpoint(path, report):
    """torch.load of a trusted checkpoint (a pickle: it can run code, as with any .pth), with stub classes on retry."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (ModuleNotFoundError, AttributeError, ImportError) as e:
        report.append(f"plain torch.load failed ({type(e).__name__}: {e}); retrying with stub classes")
    _StubUnpickler.missing = []
    # torch 1.13's load ignores pickle_module unless weights_only (it resets it to the module-global `pickle`), so
    # swap that global for the duration of the call too; newer torch honours pickle_module.
    import torch.serialization as ser
    saved = ser.pickle
    ser.pickle = _stub_pickle
    try:
        obj = torch.load(path, map_location="cpu", pickle_module=_stub_pickle, weights_only=False)
    finally:
        ser.pickle = saved
    if _StubUnpickler.missing:
        report.append("stubbed unavailable classes: " + ", ".join(sorted(set(_StubUnpickler.missing))))
    return obj


def select_state_dict(obj, use_ema, report):
    if isinstance(obj, dict) and obj and all(torch.is_tensor(v) for v in obj.values()):
        report.append("input is a bare state dict")
        return obj, None
    if not isinstance(obj, dict):
        raise ConversionError(f"expected a dict (checkpoint or state dict), got {type(obj).__name__}")
    order = ["model_ema", "model", "state_dict"] if use_ema else ["model", "state_dict", "model_ema"]
    for key in order:
        if isinstance(obj.get(key), dict):
            if use_ema and key != "model_ema":
                raise ConversionError(f"--ema given but the checkpoint has no 'model_ema' (keys: {sorted(obj)})")
            report.append(f"using checkpoint['{key}'] (checkpoint keys: {', '.join(sorted(map(str, obj)))})")
            return obj[key], obj.get("args")
    raise ConversionError(f"no 'model', 'model_ema' or 'state_dict' entry among {sorted(map(str, obj))}")


def normalise_keys(sd, report):
    out = collections.OrderedDict()
    stripped, renamed = 0, 0
    for k, v in sd.items():
        nk = k
        while True:
            for prefix in ("module.", "backbone."):
                if nk.startswith(prefix):
                    nk = nk[len(prefix):]
                    stripped += 1
                    break
            else:
                break
        nk2 = re.sub(r"\.Decom([12])\.", r".LoRA\1.", nk)
        renamed += nk2 != nk
        if nk2 in out:
            raise ConversionError(f"two entries map to '{nk2}' after prefix stripping/renaming (one is '{k}')")
        out[nk2] = v
    if stripped:
        report.append(f"stripped {stripped} 'module.'/'backbone.' prefixes")
    if renamed:
        report.append(f"renamed {renamed} historical Decom1/Decom2 entries to LoRA1/LoRA2")
    return out


# ---- config inference ----

def _shape(sd, key):
    if key not in sd:
        raise ConversionError(f"missing '{key}': not a SLaK classifier state dict "
                              f"({len(sd)} keys, first: {list(sd)[:5]})")
    return tuple(sd[key].shape)


def _args_get(args, name, default):
    if args is None:
        return default
    v = args.get(name, default) if isinstance(args, dict) else getattr(args, name, default)
    return default if v is None else v


def infer_config(sd, args, report):
    if any(".lkb_reparam." in k for k in sd):
        raise ConversionError("merged (re-parameterised) checkpoints (lkb_reparam) are not supported")
    if "head.weight" not in sd and any(k.startswith("norm0.") for k in sd):
        raise ConversionError("a segmentation/detection backbone (norm0..norm3, no head): slak infer needs the "
                              "classifier's norm and head")
    stem = _shape(sd, "downsample_layers.0.0.weight")
    if len(stem) != 4:
        raise ConversionError(f"downsample_layers.0.0.weight must be 4-D, got {stem}")
    dims = [stem[0]] + [_shape(sd, f"downsample_layers.{i}.1.weight")[0] for i in range(1, 4)]
    in_chans = stem[1]
    depths = []
    for s in range(4):
        idx = [int(m.group(1)) for k in sd for m in [re.match(rf"stages\.{s}\.(\d+)\.", k)] if m]
        if not idx:
            raise ConversionError(f"stage {s} has no blocks (no 'stages.{s}.<b>.' keys)")
        depths.append(max(idx) + 1)
    num_classes = _shape(sd, "head.weight")[0]
    decom = any(".large_kernel.LoRA1." in k for k in sd)
    bn = any(re.search(r"\.large_kernel\.\w+\.bn\.", k) for k in sd)
    ks, smalls = [], []
    for s in range(4):
        p = f"stages.{s}.0.large_kernel."
        if decom:
            c, _, k, n = _shape(sd, p + "LoRA1.conv.weight")
            if _shape(sd, p + "LoRA2.conv.weight") != (c, 1, n, k):
                raise ConversionError(f"stage {s}: LoRA2 {_shape(sd, p + 'LoRA2.conv.weight')} is not (C, 1, N, K) "
                                      f"for LoRA1 {(c, 1, k, n)}")
            smalls.append(n)
        else:
            c, _, k, k2 = _shape(sd, p + "lkb_origin.conv.weight")
            if k != k2:
                raise ConversionError(f"stage {s}: lkb_origin is {k}x{k2}, expected square")
        if p + "small_conv.conv.weight" in sd:
            smalls.append(_shape(sd, p + "small_conv.conv.weight")[2])
        ks.append(k)
    if smalls and len(set(smalls)) != 1:
        raise ConversionError(f"inconsistent small kernel sizes across stages: {smalls}")
    n = smalls[0] if smalls else max(ks)
    for s in range(4):
        has_small = f"stages.{s}.0.large_kernel.small_conv.conv.weight" in sd
        if has_small != (n < ks[s]):
            raise ConversionError(f"stage {s}: small_conv {'present' if has_small else 'absent'} but N={n}, K={ks[s]}")
    has_gamma = any(re.match(r"stages\.\d+\.\d+\.gamma$", k) for k in sd)
    ls = float(_args_get(args, "layer_scale_init_value", 1e-6)) if has_gamma else 0.0
    if has_gamma and ls <= 0:
        ls = 1e-6
    cfg = collections.OrderedDict(
        in_chans=int(in_chans), num_classes=int(num_classes), depths=depths, dims=[int(d) for d in dims],
        drop_path_rate=float(_args_get(args, "drop_path", 0.0)), layer_scale_init_value=ls,
        head_init_scale=float(_args_get(args, "head_init_scale", 1.0)), kernel_size=[int(k) for k in ks] + [int(n)],
        width_factor=1.0, Decom=bool(decom), bn=bool(bn))
    # What args said, for the report (shapes win).
    if args is not None:
        for name, inferred in (("kernel_size", cfg["kernel_size"]), ("Decom", cfg["Decom"]), ("bn", cfg["bn"]),
                               ("nb_classes", cfg["num_classes"])):
            said = _args_get(args, name, None)
            if said is not None and (list(said) if isinstance(said, (list, tuple)) else said) != inferred:
                report.append(f"WARNING: args.{name} = {said!r} disagrees with the tensor shapes ({inferred!r}); "
                              f"using the shapes")
        wf = _args_get(args, "width_factor", None)
        if wf is not None:
            report.append(f"args.width_factor = {wf}: written as width_factor 1.0 with the truncated real widths {dims}")
    else:
        report.append("no usable args: every value inferred from shapes")
    return cfg


def _reference_model_class():
    """tools/slak_reference_model.py's SLaK, loaded by path (the converter may run from any directory)."""
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "slak_reference_model.py")
    spec = importlib.util.spec_from_file_location("slak_reference_model", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.SLaK


def verify(sd, cfg, report):
    SLaK = _reference_model_class()
    model_sd = SLaK(**cfg).state_dict()
    missing = [k for k in model_sd if k not in sd]
    unexpected = [k for k in sd if k not in model_sd]
    wrong = [f"{k}: {tuple(sd[k].shape)} vs {tuple(v.shape)}" for k, v in model_sd.items()
             if k in sd and tuple(sd[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        raise ConversionError("the state dict does not match SLaK(" + json.dumps(cfg) + "):"
                              + (f"\n  missing {missing[:10]}" if missing else "")
                              + (f"\n  unexpected {unexpected[:10]}" if unexpected else "")
                              + (f"\n  wrong shapes {wrong[:10]}" if wrong else ""))
    report.append(f"verified: {len(model_sd)} keys and shapes match tools/slak_reference_model.SLaK(config)")
    # Write in the model's state_dict order (what the reference and the C# model produce).
    return collections.OrderedDict((k, sd[k]) for k in model_sd)


def convert(in_path, out_dir, use_ema=False, check=True, log=print):
    report = []
    obj = load_checkpoint(in_path, report)
    sd, args = select_state_dict(obj, use_ema, report)
    sd = normalise_keys(sd, report)
    tensors = collections.OrderedDict()
    for k, v in sd.items():
        if not torch.is_tensor(v):
            raise ConversionError(f"entry '{k}' is a {type(v).__name__}, not a tensor")
        if v.is_floating_point() and v.dtype != torch.float32:
            report.append(f"{k}: {v.dtype} converted to float32")
            v = v.float()
        tensors[k] = v.detach().contiguous()
    if isinstance(args, _Stub):
        report.append("args is a stub (its class was unavailable); reading its attributes anyway")
    cfg = infer_config(tensors, args, report)
    if check:
        tensors = verify(tensors, cfg, report)
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(os.path.join(out_dir, "weights.safetensors"), list(tensors.items()),
                      metadata={"format": "pt", "source": os.path.basename(in_path)})
    cfg_path = os.path.join(out_dir, "config.json")
    with open(cfg_path + ".tmp", "w", encoding="utf-8", newline="\n") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    os.replace(cfg_path + ".tmp", cfg_path)
    zeros = sum(int((t == 0).sum()) for k, t in tensors.items() if t.dim() in (2, 4))
    total = sum(t.numel() for k, t in tensors.items() if t.dim() in (2, 4))
    report.append(f"inferred config: {json.dumps(cfg)}")
    report.append(f"wrote {len(tensors)} tensors ({sum(t.numel() for t in tensors.values())} values; "
                  f"{zeros / max(total, 1):.1%} of the 2-D/4-D weights are exactly 0, i.e. pruned) to {out_dir}")
    for line in report:
        log(line)
    return cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="official SLaK .pth (or a bare state dict)")
    ap.add_argument("out_dir", help="folder for weights.safetensors and config.json")
    ap.add_argument("--ema", action="store_true", help="convert checkpoint['model_ema'] instead of ['model']")
    ap.add_argument("--no-verify", action="store_true", help="skip the key/shape check against tools/slak_reference_model.SLaK")
    a = ap.parse_args(argv)
    try:
        convert(a.checkpoint, a.out_dir, use_ema=a.ema, check=not a.no_verify)
    except ConversionError as e:
        print(f"convert_slak_checkpoint: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
