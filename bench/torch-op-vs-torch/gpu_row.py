#!/usr/bin/python3
"""The GPU check row of the slak PyTorch operator: torch.ops.slak.decomposed_dwconv2d on CUDA tensors
(libslak_kernels.so, on torch.cuda.current_stream()) against conv2d(groups=C) on the same GPU, at SLaK-T's four
stage shapes (batch 8, masks at density 0.6 on the K x 5 and 5 x K branches): forward and both gradients compared
with a float64 conv2d reference on the GPU (relative max error, tolerance 1e-5 of the largest magnitude), and timed
with CUDA events (median of 20 after 3 warm-ups), the operator on a non-default stream.

    bash bench/torch-op-vs-torch/gpu_row.sh OUT.md      # builds libslak_kernels.so with nvcc first
    SLAK_KERNELS_CUDA_LIBRARY=build/libslak_kernels.so /usr/bin/python3 bench/torch-op-vs-torch/gpu_row.py OUT.md

Exit status 0 with every row ok, 1 with a FAIL row, 77 (skip) without a GPU or without libslak_kernels.so. Never run
yet: no GPU was available where it was written.
"""
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import slak_torch  # noqa: E402

STAGES = [(124, 56, 51), (249, 28, 49), (499, 14, 47), (998, 7, 13)]


def timed(fn, reps=20, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def rel_err(got, ref):
    scale = ref.abs().max().item() or 1.0
    return (got.double() - ref).abs().max().item() / scale


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else None
    if not torch.cuda.is_available():
        print("skip: torch sees no CUDA device")
        return 77
    try:
        slak_torch.load("cuda")
    except OSError as e:
        print(f"skip: libslak_kernels.so not available: {e}")
        return 77
    dev = torch.device("cuda")
    gen = torch.Generator(device=dev).manual_seed(1)
    lines = [f"| row | shape | max rel. error y / dx / dw | conv2d fwd+bwd ms | op fwd+bwd ms | x | status |",
             "|---|---|---|---:|---:|---:|---|"]
    failed = False
    stream = torch.cuda.Stream()
    for c, hw, k in STAGES:
        shapes = [(c, 1, k, 5), (c, 1, 5, k), (c, 1, 5, 5)]
        x = torch.randn(8, c, hw, hw, device=dev, generator=gen, requires_grad=True)
        ws = [torch.randn(*s, device=dev, generator=gen).mul_(0.05).requires_grad_() for s in shapes]
        ms = [(torch.rand(*s, device=dev, generator=gen) < 0.6).float() for s in shapes[:2]] + [None]
        dy = torch.randn(8, c, hw, hw, device=dev, generator=gen)
        with torch.cuda.stream(stream):
            y = slak_torch.decomposed_dwconv2d(x, *ws, masks=ms)
            grads = torch.autograd.grad(y, [x] + ws, dy)
        torch.cuda.current_stream().wait_stream(stream)
        x64 = x.detach().double().requires_grad_()
        w64 = [w.detach().double().requires_grad_() for w in ws]
        y64 = sum(F.conv2d(x64, w if m is None else w * m.double(), padding=(w.shape[2] // 2, w.shape[3] // 2),
                           groups=c) for w, m in zip(w64, ms))
        g64 = torch.autograd.grad(y64, [x64] + w64, dy.double())
        errs = [rel_err(y, y64)] + [rel_err(a, b) for a, b in zip(grads, g64)]
        ok = all(e <= 1e-5 for e in errs)
        failed |= not ok

        def torch_fb():
            yy = sum(F.conv2d(x, w, padding=(w.shape[2] // 2, w.shape[3] // 2), groups=c) for w in ws)
            torch.autograd.grad(yy, [x] + ws, dy)

        def op_fb():
            yy = slak_torch.decomposed_dwconv2d(x, *ws, masks=ms)
            torch.autograd.grad(yy, [x] + ws, dy)

        t_torch, t_op = timed(torch_fb), timed(op_fb)
        lines.append(f"| torch.ops.slak.decomposed_dwconv2d (cuda) | N=8 C={c} {hw}x{hw} K={k} | "
                     f"{errs[0]:.1e} / {errs[1]:.1e} / {max(errs[2:]):.1e} | {t_torch:.2f} | {t_op:.2f} | "
                     f"{t_torch / t_op:.2f} | {'ok' if ok else 'FAIL'} |")
        print(lines[-1], flush=True)
    text = (f"## torch.ops.slak on CUDA tensors ({torch.cuda.get_device_name()}, torch {torch.__version__})\n\n"
            + "\n".join(lines) + "\n")
    if out:
        with open(out, "a") as f:
            f.write(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
