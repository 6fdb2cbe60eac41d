#!/usr/bin/python3
"""PyTorch peer of the GPU check's norm rows (bench/Slak.GpuCheck/Cases.Norm.cs) on the same GPU, SLaK-T at batch
128 on 224 px (widths 124/249/499/998 at maps 56/28/14/7), fp32:
  - layernorm: F.layer_norm over channels-last rows (N*H*W, C): the block's LayerNorm (layernorm_rowsW_* rows);
  - layernorm_cf: the channels-first LayerNorm as F.layer_norm on the NHWC view of an NCHW tensor, the result made
    NCHW again (what the stem / downsampling LayerNorm computes);
  - batchnorm: F.batch_norm in training mode on (N, C, H, W) (a large-kernel branch's BatchNorm).
Times "fwd" (no grad) and "fwd+bwd" (autograd: dx, dweight, dbias). Prints one line per problem and pass:
    <op> <pass> <N> <C> <H> <ms> <GB/s>
GB/s counts the tensor passes every implementation must make (fwd: read x, write y; fwd+bwd adds read x, read dy,
write dx), so it compares with the HBM bandwidth. Times are medians of --reps runs after one warm-up run. Run with a
PyTorch that has CUDA (bench/gpu/run.sh does).
"""
import torch
import torch.nn.functional as F

from peer_timing import device_and_sync, median_ms, peer_arguments


def main():
    ap = peer_arguments()
    a = ap.parse_args()
    dev, sync = device_and_sync(a.device)
    if dev.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
    g = torch.Generator().manual_seed(1)
    n = a.batch
    for c, h in [(124, 56), (249, 28), (499, 14), (998, 7)]:
        x = torch.randn(n, c, h, h, generator=g).to(dev)
        dy = torch.randn(n, c, h, h, generator=g).to(dev)
        w = torch.randn(c, generator=g).to(dev)
        b = torch.randn(c, generator=g).to(dev)
        rows = x.permute(0, 2, 3, 1).contiguous()
        dy_rows = dy.permute(0, 2, 3, 1).contiguous()
        rm = torch.zeros(c, device=dev)
        rv = torch.ones(c, device=dev)

        def ln(t):
            return F.layer_norm(t, (c,), w, b, 1e-6)

        def ln_cf(t):
            return F.layer_norm(t.permute(0, 2, 3, 1), (c,), w, b, 1e-6).permute(0, 3, 1, 2).contiguous()

        def bn(t):
            return F.batch_norm(t, rm, rv, w, b, True, 0.1, 1e-5)

        for name, fn, inp, grad in [("layernorm", ln, rows, dy_rows), ("layernorm_cf", ln_cf, x, dy),
                                    ("batchnorm", bn, x, dy)]:
            with torch.no_grad():
                fwd = median_ms(lambda: fn(inp), a.reps, sync)
            leaf = inp.clone().requires_grad_(True)
            wg = w.clone().requires_grad_(True)
            bg = b.clone().requires_grad_(True)

            def step():
                if name == "batchnorm":
                    y = F.batch_norm(leaf, rm, rv, wg, bg, True, 0.1, 1e-5)
                elif name == "layernorm":
                    y = F.layer_norm(leaf, (c,), wg, bg, 1e-6)
                else:
                    y = F.layer_norm(leaf.permute(0, 2, 3, 1), (c,), wg, bg, 1e-6).permute(0, 3, 1, 2).contiguous()
                torch.autograd.grad(y, (leaf, wg, bg), grad)

            both = median_ms(step, a.reps, sync)
            size = 4.0 * x.numel()
            for what, ms, passes in [("fwd", fwd, 2), ("fwd+bwd", both, 5)]:
                print(f"{name} {what} {n} {c} {h} {ms:.3f} {passes * size / ms / 1e6:.0f}", flush=True)


if __name__ == "__main__":
    main()
