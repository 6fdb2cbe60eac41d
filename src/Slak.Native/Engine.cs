// The validated C ABI calls as calls of the C# CPU depthwise engine (CpuDwConvDecomposed: the same entry points the
// CPU backend's decomposed operator uses). Masked branches carry their live-tap lists, so the forward, the input
// gradient and (with skip_masked) the weight gradient cost in proportion to the mask density; the forward of several
// branches runs as one correlation with the merged kernel. Arguments are already validated (Validation.cs).
using System.Buffers;
using System.Numerics.Tensors;
using Slak.Backends.Cpu;

namespace Slak.Native;

internal static unsafe class Engine
{
    /// <summary>output = sum over branches of conv(input, w[b] * mask[b]) (flip: the input gradient, the filters
    /// rotated by 180 degrees). masks[b] == 0 means dense. Overwrites output.</summary>
    public static void Conv(Geometry g, (int Kh, int Kw)[] kernels, bool flip, float* output, float* input,
        nint[] w, nint[] masks)
    {
        int n = (int)g.N, c = (int)g.C, h = (int)g.H, wd = (int)g.W, numel = (int)g.Numel;
        var branches = Branches(c, kernels, w, masks);
        var outputSpan = new Span<float>(output, numel);
        if (branches.Length == 1 || Array.TrueForAll(masks, m => m == 0))
        {
            // Dense branches: one pass (the forward sum runs as one correlation with the merged kernel).
            Run(n, c, h, wd, branches, flip, input, numel, outputSpan);
            return;
        }
        // Masked branches: one call per branch, summed. Measured at SLaK-T stage 1 (density 0.6, one thread) the
        // engine's one-pass multi-branch paths took 2.4x (forward, merged union kernel: random masks fragment its
        // rows) and more than the branches one by one, whose extra cost is one add per element and branch.
        float[] scratch = ArrayPool<float>.Shared.Rent(numel);
        try
        {
            var tmp = scratch.AsSpan(0, numel);
            for (int b = 0; b < branches.Length; b++)
            {
                Run(n, c, h, wd, [branches[b]], flip, input, numel, b == 0 ? outputSpan : tmp);
                if (b > 0) TensorPrimitives.Add(outputSpan, tmp, outputSpan);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(scratch);
        }
    }

    private static void Run(int n, int c, int h, int w, CpuDwConvBranch[] branches, bool flip, float* input, int numel,
        Span<float> output)
    {
        if (flip)
        {
            var dy = new PointerMemory(input, numel).Memory;
            var dys = new ReadOnlyMemory<float>[branches.Length];
            Array.Fill(dys, dy);
            CpuDwConvDecomposed.BackwardData(n, c, h, w, branches, dys, output);
        }
        else
        {
            CpuDwConvDecomposed.Forward(n, c, h, w, branches, new ReadOnlySpan<float>(input, numel), [], output);
        }
    }

    /// <summary>dw[b] = gradient with respect to the effective filter of branch b (not multiplied by its mask); with
    /// skipMasked, taps whose mask is 0 are not computed and written as 0. An empty problem (n, h or w = 0) writes
    /// zeros.</summary>
    public static void FilterGrad(Geometry g, (int Kh, int Kw)[] kernels, nint[] dw, float* x, float* dy,
        nint[] masks, bool skipMasked)
    {
        int c = (int)g.C;
        if (c == 0) return;
        if (g.Numel == 0)
        {
            for (int b = 0; b < kernels.Length; b++)
                new Span<float>((float*)dw[b], c * kernels[b].Kh * kernels[b].Kw).Clear();
            return;
        }
        int numel = (int)g.Numel;
        var weights = new nint[kernels.Length]; // the weight gradient reads no weights
        var branches = Branches(c, kernels, weights, skipMasked ? masks : new nint[kernels.Length]);
        var dyMemory = new PointerMemory(dy, numel).Memory;
        var dys = new ReadOnlyMemory<float>[kernels.Length];
        Array.Fill(dys, dyMemory);
        var dws = new Memory<float>[kernels.Length];
        for (int b = 0; b < dws.Length; b++)
            dws[b] = new PointerMemory((float*)dw[b], c * kernels[b].Kh * kernels[b].Kw).Memory;
        CpuDwConvDecomposed.BackwardFilter((int)g.N, c, (int)g.H, (int)g.W, branches,
            new ReadOnlySpan<float>(x, numel), dys, dws, skipMasked);
    }

    // One CpuDwConvBranch per kernel: its weight, its mask and the mask's live taps (null for a dense branch). A null
    // weight pointer (the weight gradient) becomes a zero filter of the right length, which that pass never reads.
    private static CpuDwConvBranch[] Branches(int c, (int Kh, int Kw)[] kernels, nint[] w, nint[] masks)
    {
        var branches = new CpuDwConvBranch[kernels.Length];
        for (int b = 0; b < branches.Length; b++)
        {
            var (kh, kw) = kernels[b];
            int len = c * kh * kw;
            ReadOnlyMemory<float> weight = w[b] != 0 ? new PointerMemory((float*)w[b], len).Memory : new float[len];
            ReadOnlyMemory<float> mask = default;
            CpuDwConvTapList? taps = null;
            if (masks[b] != 0)
            {
                var m = new PointerMemory((float*)masks[b], len).Memory;
                mask = m;
                taps = CpuDwConvTapList.FromMask(c, kh, kw, m.Span, 0);
            }
            branches[b] = new CpuDwConvBranch(kh, kw, weight, mask, taps);
        }
        return branches;
    }
}
