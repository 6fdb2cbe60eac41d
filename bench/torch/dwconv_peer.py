#!/usr/bin/python3
"""PyTorch peer for the depthwise-convolution comparison programs of bench/Slak.Bench (DwConv/) and, with
--device cuda, for the GPU check (bench/gpu/run.sh): the same problems on the same GPU.

Times F.conv2d(groups=C) on the CPU for the decomposed SLaK operator (M x S + S x M [+ S x S], branch outputs
summed) or a dense M x M kernel, forward and forward+backward (input and weight gradients), with
torch.set_num_threads(--threads). Prints one line per problem:
    <N> <C> <H> <M> <kind> <fwd_ms> <fwdbwd_ms>
Times are medians of --reps runs after one warm-up run. Run with Debian's /usr/bin/python3 (python3-torch).
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F


def median_ms(fn, reps, sync=lambda: None):
    fn()
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()  # a GPU launch returns before the work is done
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def problem(n, c, h, m, s, kind):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, c, h, h, generator=g) * 2 - 1
    if kind == "decomposed":
        sizes = [(m, s), (s, m), (s, s)]
    elif kind == "decomposed2":
        sizes = [(m, s), (s, m)]
    else:
        sizes = [(m, m)]
    ws = [(torch.rand(c, 1, kh, kw, generator=g) * 2 - 1) for kh, kw in sizes]
    return x, ws


def forward(x, ws):
    y = None
    for w in ws:
        kh, kw = w.shape[2], w.shape[3]
        b = F.conv2d(x, w, padding=(kh // 2, kw // 2), groups=x.shape[1])
        y = b if y is None else y + b
    return y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--short", type=int, default=5, help="short side S of the decomposed kernels")
    ap.add_argument("--kind", default="decomposed", choices=["decomposed", "decomposed2", "dense"])
    ap.add_argument("--no-backward", action="store_true")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (fp32; TF32 off so the peer does fp32 FMAs as we do)")
    ap.add_argument("problems", nargs="+", help="N,C,H,M")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    if dev.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    for spec in a.problems:
        n, c, h, m = (int(v) for v in spec.split(","))
        x, ws = problem(n, c, h, m, a.short, a.kind)
        x, ws = x.to(dev), [w.to(dev) for w in ws]
        with torch.no_grad():
            fwd = median_ms(lambda: forward(x, ws), a.reps, sync)
        bwd = float("nan")
        if not a.no_backward:
            xg = x.clone().requires_grad_(True)
            wg = [w.clone().requires_grad_(True) for w in ws]
            gy = torch.ones(n, c, h, h, device=dev)

            def step():
                for t in [xg] + wg:
                    t.grad = None
                forward(xg, wg).backward(gy)

            bwd = median_ms(step, a.reps, sync)
        print(f"{n} {c} {h} {m} {a.kind} {fwd:.3f} {bwd:.3f}", flush=True)


if __name__ == "__main__":
    main()
