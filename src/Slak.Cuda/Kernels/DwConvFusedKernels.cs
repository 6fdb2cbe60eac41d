// Typed launchers for cuda/kernels/dwconv_fused.cu: the decomposed depthwise convolution with up to three branches
// in one kernel (forward: one read of each input tile for all branches, one output per branch; input gradient: all
// branches' transposed convolutions summed in registers, dx written once). Filters whose union halo makes the tile
// exceed 48 KB of shared memory (e.g. M = 151 with a 5-wide partner) and operators with more than three branches
// fall back to the per-branch kernels of dwconv.cu. Weight gradients of all branches: one kernel, per-tile partial
// sums of the live taps in shared memory from one read of each x tile, then a deterministic reduction. Grid: x = plane (n*C, up to 2^31-1),
// y = tile row, z = tile column.
using System.Runtime.InteropServices;
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Launchers of the fused decomposed depthwise convolution.</summary>
public static class DwConvFusedKernels
{
    private const int TileW = 32, TileH = 32, ThreadsY = 4, MaxBranches = 3;
    private const int SharedLimit = 48 * 1024;

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct DwFusedParams(int N, int C, int H, int W, int Branches,
        int Kh0, int Kw0, int Kh1, int Kw1, int Kh2, int Kw2, int HaloH, int HaloW, int Flip, int Sum);

    /// <summary>Shared bytes of a fused launch for these branches, or -1 when it cannot run fused.</summary>
    public static int SharedBytes(ReadOnlySpan<DwFusedBranch> branches)
    {
        if (branches.Length is 0 or > MaxBranches) return -1;
        int hh = 0, hw = 0, lists = 0;
        foreach (var b in branches)
        {
            hh = Math.Max(hh, b.Kh / 2);
            hw = Math.Max(hw, b.Kw / 2);
            lists += 2 * b.Kh * b.Kw + b.Kw + 1;
        }
        long tile = (long)(TileH + 2 * hh) * (TileW + 2 * hw);
        long bytes = (((tile + 1) & ~1L) + lists) * sizeof(float);
        return bytes <= SharedLimit ? (int)bytes : -1;
    }

    /// <summary>ys[b] = depthwise conv of x (N, C, H, W) with branch b (weight * mask); all outputs overwritten.</summary>
    public static void Forward(IGpuDevice dev, ReadOnlySpan<DevicePtr> ys, DevicePtr x, ReadOnlySpan<DwFusedBranch> branches,
                               int n, int c, int h, int w)
    {
        ArgumentNullException.ThrowIfNull(dev);
        Check(ys.Length, branches.Length, nameof(ys));
        CheckShape(branches, n, c, h, w);
        int shared = SharedBytes(branches);
        if (shared < 0)
        {
            for (int b = 0; b < branches.Length; b++)
                DwConvKernels.Forward(dev, ys[b], x, branches[b].Weight, branches[b].Mask, n, c, h, w,
                                      branches[b].Kh, branches[b].Kw);
            return;
        }
        Span<DevicePtr> ins = [x, x, x];
        Launch(dev, ys, ins, branches, n, c, h, w, flip: false, sum: false, shared);
    }

    /// <summary>y = sum over branches of the depthwise conv of x with branch b (inference; overwrites y). The fused
    /// kernel's summing mode with every branch reading x: one output write, no branch outputs.</summary>
    public static void ForwardSum(IGpuDevice dev, DevicePtr y, DevicePtr x, ReadOnlySpan<DwFusedBranch> branches,
                                  int n, int c, int h, int w)
    {
        ArgumentNullException.ThrowIfNull(dev);
        Check(branches.Length, branches.Length, nameof(branches));
        CheckShape(branches, n, c, h, w);
        int shared = SharedBytes(branches);
        if (shared < 0)
        {
            var xs = new DevicePtr[branches.Length];
            Array.Fill(xs, x);
            PerBranchSum(dev, y, xs, branches, n, c, h, w, flip: false);
            return;
        }
        Span<DevicePtr> outs = [y, DevicePtr.Null, DevicePtr.Null];
        Span<DevicePtr> ins = [x, x, x];
        Launch(dev, outs, ins, branches, n, c, h, w, flip: false, sum: true, shared);
    }

    /// <summary>dx = sum over branches of the input gradient of branch b given dys[b] (overwrites dx).</summary>
    public static void BackwardData(IGpuDevice dev, DevicePtr dx, ReadOnlySpan<DevicePtr> dys,
                                    ReadOnlySpan<DwFusedBranch> branches, int n, int c, int h, int w)
    {
        ArgumentNullException.ThrowIfNull(dev);
        Check(dys.Length, branches.Length, nameof(dys));
        CheckShape(branches, n, c, h, w);
        int shared = SharedBytes(branches);
        if (shared < 0)
        {
            PerBranchSum(dev, dx, dys, branches, n, c, h, w, flip: true);
            return;
        }
        Span<DevicePtr> outs = [dx, DevicePtr.Null, DevicePtr.Null];
        Launch(dev, outs, dys, branches, n, c, h, w, flip: true, sum: true, shared);
    }

    /// <summary>The fallback for tiles that do not fit in shared memory: out = sum over branches of the per-branch
    /// kernel on ins[b] (flip: the input-gradient correlation), through one temporary plane set.</summary>
    private static void PerBranchSum(IGpuDevice dev, DevicePtr output, ReadOnlySpan<DevicePtr> ins,
                                     ReadOnlySpan<DwFusedBranch> branches, int n, int c, int h, int w, bool flip)
    {
        long count = (long)n * c * h * w;
        var tmp = branches.Length > 1 ? dev.Allocate(count * sizeof(float)) : DevicePtr.Null;
        try
        {
            for (int b = 0; b < branches.Length; b++)
            {
                DwConvKernels.Forward(dev, b == 0 ? output : tmp, ins[b], branches[b].Weight, branches[b].Mask,
                                      n, c, h, w, branches[b].Kh, branches[b].Kw, flip: flip);
                if (b > 0) ElementwiseKernels.Axpy(dev, output, tmp, 1f, count);
            }
        }
        finally
        {
            if (!tmp.IsNull) dev.Free(tmp);
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct DwFusedWgradParams(int N, int C, int H, int W, int Branches,
        int Kh0, int Kw0, int Kh1, int Kw1, int Kh2, int Kw2, int HaloH, int HaloW, int ImagesPerChunk,
        int TileH, int TileW);

    /// <summary>dws[b] = weight gradient of branch b given x and dys[b] (overwritten). A branch whose
    /// <see cref="DwFusedBranch.Mask"/> is not null gets only its live taps computed and every other tap exactly 0;
    /// <see cref="DwFusedBranch.Weight"/> is not read.</summary>
    public static void BackwardFilter(IGpuDevice dev, ReadOnlySpan<DevicePtr> dws, DevicePtr x,
                                      ReadOnlySpan<DevicePtr> dys, ReadOnlySpan<DwFusedBranch> branches,
                                      int n, int c, int h, int w)
    {
        ArgumentNullException.ThrowIfNull(dev);
        Check(dws.Length, branches.Length, nameof(dws));
        Check(dys.Length, branches.Length, nameof(dys));
        CheckShape(branches, n, c, h, w);
        int nb = branches.Length, hh = 0, hw = 0, total = 0;
        foreach (var b in branches)
        {
            hh = Math.Max(hh, b.Kh / 2);
            hw = Math.Max(hw, b.Kw / 2);
            total += b.Kh * b.Kw;
        }
        int tileW = Math.Min(w, 64), xw = tileW + 2 * hw;
        long budget = SharedLimit / sizeof(float) - 2L * total - (long)2 * hh * xw;
        int tileH = nb > MaxBranches ? 0 : (int)Math.Clamp(budget / (xw + tileW), 0, h);
        if (tileH < 1)
        {
            for (int b = 0; b < nb; b++)
                DwConvKernels.BackwardFilter(dev, dws[b], x, dys[b], branches[b].Mask, n, c, h, w,
                                             branches[b].Kh, branches[b].Kw, !branches[b].Mask.IsNull);
            return;
        }
        int chunks = Math.Clamp(2048 / Math.Max(c, 1), 1, n);
        int perChunk = (n + chunks - 1) / chunks;
        chunks = (n + perChunk - 1) / perChunk;
        var partials = dev.Allocate((long)chunks * c * total * sizeof(float));
        try
        {
            Span<DwFusedBranch> at = stackalloc DwFusedBranch[MaxBranches];
            Span<DevicePtr> parts = stackalloc DevicePtr[MaxBranches];
            Span<DevicePtr> grads = stackalloc DevicePtr[MaxBranches];
            branches.CopyTo(at);
            long offset = 0;
            for (int b = 0; b < nb; b++)
            {
                parts[b] = partials.Offset(offset * sizeof(float));
                offset += (long)chunks * c * at[b].Kh * at[b].Kw;
                grads[b] = dys[b];
            }
            var p = new DwFusedWgradParams(n, c, h, w, nb, at[0].Kh, at[0].Kw, at[1].Kh, at[1].Kw, at[2].Kh, at[2].Kw,
                                           hh, hw, perChunk, tileH, tileW);
            var a = new KernelArgs();
            for (int b = 0; b < MaxBranches; b++) a.Add(parts[b]);
            a.Add(x);
            for (int b = 0; b < MaxBranches; b++) a.Add(grads[b]);
            for (int b = 0; b < MaxBranches; b++) a.Add(at[b].Mask);
            a.Add(p);
            int shared = ((tileH + 2 * hh) * xw + tileH * tileW + 2 * total) * sizeof(float);
            a.Launch(dev, "dwconv_fused_wgrad_kernel", new Dim3((uint)c, (uint)chunks), 256, shared);
            for (int b = 0; b < nb; b++)
                ReduceKernels.Finalize(dev, dws[b], parts[b], chunks, c * at[b].Kh * at[b].Kw);
        }
        finally { dev.Free(partials); }
    }

    private static void Launch(IGpuDevice dev, ReadOnlySpan<DevicePtr> outs, ReadOnlySpan<DevicePtr> ins,
                               ReadOnlySpan<DwFusedBranch> br, int n, int c, int h, int w, bool flip, bool sum,
                               int shared)
    {
        int nb = br.Length, hh = 0, hw = 0;
        foreach (var b in br)
        {
            hh = Math.Max(hh, b.Kh / 2);
            hw = Math.Max(hw, b.Kw / 2);
        }
        Span<DwFusedBranch> at = stackalloc DwFusedBranch[MaxBranches];
        Span<DevicePtr> o = stackalloc DevicePtr[MaxBranches];
        Span<DevicePtr> i = stackalloc DevicePtr[MaxBranches];
        br.CopyTo(at);
        for (int b = 0; b < nb; b++)
        {
            o[b] = sum ? (b == 0 ? outs[0] : DevicePtr.Null) : outs[b];
            i[b] = ins[b];
        }
        var p = new DwFusedParams(n, c, h, w, nb, at[0].Kh, at[0].Kw, at[1].Kh, at[1].Kw, at[2].Kh, at[2].Kw,
                                  hh, hw, flip ? 1 : 0, sum ? 1 : 0);
        var a = new KernelArgs();
        for (int b = 0; b < MaxBranches; b++) a.Add(o[b]);
        for (int b = 0; b < MaxBranches; b++) a.Add(i[b]);
        for (int b = 0; b < MaxBranches; b++) a.Add(at[b].Weight);
        for (int b = 0; b < MaxBranches; b++) a.Add(at[b].Mask);
        a.Add(p);
        var grid = new Dim3((uint)((long)n * c), (uint)((h + TileH - 1) / TileH), (uint)((w + TileW - 1) / TileW));
        a.Launch(dev, "dwconv_fused_kernel", grid, new Dim3(TileW, ThreadsY), shared);
    }

    private static void Check(int count, int branches, string name)
    {
        if (branches < 1)
            throw new ArgumentException($"at least one branch is required, got {branches}", nameof(branches));
        if (count != branches)
            throw new ArgumentException($"{name} must have one entry per branch ({branches}), got {count}", name);
    }

    private static void CheckShape(ReadOnlySpan<DwFusedBranch> branches, int n, int c, int h, int w)
    {
        if (n < 1 || c < 1 || h < 1 || w < 1)
            throw new ArgumentException($"sizes must be positive, got N={n}, C={c}, H={h}, W={w}", nameof(n));
        for (int b = 0; b < branches.Length; b++)
            if (branches[b].Kh < 1 || branches[b].Kw < 1 || (branches[b].Kh & 1) == 0 || (branches[b].Kw & 1) == 0)
                throw new ArgumentException($"branch {b}: kernel sizes must be positive and odd, got " +
                    $"Kh={branches[b].Kh}, Kw={branches[b].Kw}", nameof(branches));
    }
}
