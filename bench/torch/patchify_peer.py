#!/usr/bin/python3
"""PyTorch peer of the GPU check's patchify rows (bench/Slak.GpuCheck/Cases.Patchify.cs): F.conv2d with kernel =
stride and no padding, SLaK-T's stem (3 -> 124, 4x4/4 on 224 px) and stage-1 -> 2 downsampling (124 -> 249, 2x2/2 on
56 x 56), on the same GPU. Times the forward (with bias), the input gradient and the weight + bias gradient
separately (torch.nn.grad.conv2d_input / conv2d_weight, the operations PyTorch's backward runs), fp32 with TF32 off
(--tf32: on, as `--precision tf32` runs our GEMMs). Prints one line per problem and pass:
    <name> <pass> <N> <Cin> <H> <Cout> <S> <ms>
Times are medians of --reps runs after one warm-up run. Run with a PyTorch that has CUDA (bench/gpu/run.sh does).
"""
import torch
import torch.nn.functional as F

from peer_timing import device_and_sync, median_ms, peer_arguments


def main():
    ap = peer_arguments()
    ap.add_argument("--tf32", action="store_true", help="TF32 convolutions (cuDNN) instead of fp32")
    a = ap.parse_args()
    dev, sync = device_and_sync(a.device)
    if dev.type == "cuda":
        torch.backends.cudnn.allow_tf32 = a.tf32
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
    g = torch.Generator().manual_seed(1)
    n = a.batch
    for name, cin, h, cout, s in [("stem", 3, 224, 124, 4), ("downsample", 124, 56, 249, 2)]:
        x = torch.randn(n, cin, h, h, generator=g).to(dev)
        w = torch.randn(cout, cin, s, s, generator=g).to(dev)
        b = torch.randn(cout, generator=g).to(dev)
        o = h // s
        dy = torch.randn(n, cout, o, o, generator=g).to(dev)
        with torch.no_grad():
            fwd = median_ms(lambda: F.conv2d(x, w, b, stride=s), a.reps, sync)
            data = median_ms(lambda: torch.nn.grad.conv2d_input(x.shape, w, dy, stride=s), a.reps, sync)
            weight = median_ms(lambda: (torch.nn.grad.conv2d_weight(x, w.shape, dy, stride=s), dy.sum((0, 2, 3))),
                               a.reps, sync)
        for what, ms in [("fwd", fwd), ("bwd_data", data), ("bwd_weight+bias", weight)]:
            print(f"{name} {what} {n} {cin} {h} {cout} {s} {ms:.3f}", flush=True)


if __name__ == "__main__":
    main()
