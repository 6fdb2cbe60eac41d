// The decomposed depthwise convolution on the CPU: several branches (M x N, N x M, N x N in SLaK) on one input,
// each with its own weight and mask. Each pass pads every input plane once and runs all branches from that copy:
// forward writes each branch output separately (training BatchNorm needs them) and/or their sum (inference: the sum
// alone is one correlation with the merged kernel, CpuDwConvMerged.cs);
// the input gradient sums the branch contributions into one dx; the weight gradient serves all branches from one
// read of x. A single depthwise convolution is the one-branch case (there is no second single-branch engine).
using System.Buffers;

namespace Slak.Backends.Cpu;

/// <summary>Fused multi-branch depthwise convolution (NCHW float32, stride 1, same padding per branch).</summary>
internal static unsafe class CpuDwConvDecomposed
{
    /// <summary>y[b] = conv(x, branch b) for each b with a non-empty y[b]; ySum = sum over branches when not empty.
    /// x, y[b], ySum: (N, C, H, W). <paramref name="y"/> may be empty (sum only) or have one entry per
    /// branch.</summary>
    public static void Forward(int n, int c, int h, int w, IReadOnlyList<CpuDwConvBranch> branches,
        ReadOnlySpan<float> x, IReadOnlyList<Memory<float>> y, Span<float> ySum)
    {
        ArgumentNullException.ThrowIfNull(y);
        var shapes = CheckBranches(n, c, h, w, branches);
        CheckActivation(shapes[0], x.Length, nameof(x));
        if (y.Count != 0 && y.Count != branches.Count)
            throw new ArgumentException($"y must be empty or have one entry per branch ({branches.Count}), " +
                $"got {y.Count}", nameof(y));
        bool any = !ySum.IsEmpty;
        for (int b = 0; b < y.Count; b++)
        {
            if (y[b].IsEmpty) continue;
            CheckActivation(shapes[0], y[b].Length, $"y[{b}]");
            any = true;
        }
        if (!ySum.IsEmpty) CheckActivation(shapes[0], ySum.Length, nameof(ySum));
        if (!any) throw new ArgumentException("no output requested: every y[b] and ySum are empty", nameof(y));

        bool sumOnly = true;
        for (int b = 0; b < y.Count; b++) sumOnly &= y[b].IsEmpty;
        // 16 x 16 and 8 x 8 maps on NCHW rows (CpuDwConvRows16.cs, CpuDwConvRows8.cs), except the sum of several
        // branches alone (inference: the plane engine's one pass with the merged kernel).
        bool rowsApply = !(sumOnly && branches.Count > 1);
        MapPath? path = rowsApply && CpuDwConvRows16.Applies(h, w, branches) ? MapPath.Rows16
            : rowsApply && CpuDwConvRows8.Applies(h, w, branches) ? MapPath.Rows8
            : CpuDwConvPlane16.Applies(h, w) ? MapPath.Plane16
            : CpuDwConvTinyMap.Applies(h, w) ? MapPath.Tiny
            : CpuDwConvSmallMap.Applies(h, w, branches, sumOnly && branches.Count > 1) ? MapPath.Small
            : null;
        if (path is { } mapPath)
        {
            ForwardMapPath(mapPath, n, c, h, w, branches, x, y, ySum);
            return;
        }
        CpuDwConvPass[] passes;
        if (sumOnly && branches.Count > 1)
        {
            // The sum alone is one correlation with the merged kernel (CpuDwConvMerged.cs).
            var lists = new CpuDwConvTapList[branches.Count];
            for (int b = 0; b < lists.Length; b++)
                lists[b] = branches[b].Taps ?? CpuDwConvTapList.Dense(c, branches[b].Kh, branches[b].Kw);
            passes = [CpuDwConvMergedTaps.For(lists).Gather(branches)];
            y = [];
        }
        else
        {
            passes = new CpuDwConvPass[branches.Count];
            for (int b = 0; b < passes.Length; b++) passes[b] = Prepare(shapes[b], branches[b], flipped: false);
        }
        var handles = new MemoryHandle[y.Count];
        try
        {
            var ys = new nint[passes.Length];
            for (int b = 0; b < y.Count; b++)
            {
                if (y[b].IsEmpty) continue;
                handles[b] = y[b].Pin();
                ys[b] = (nint)handles[b].Pointer;
            }
            fixed (float* px = x)
            fixed (float* psum = ySum)
                CpuDwConvDrivers.Forward(n, c, h, w, passes, (nint)px, ys, (nint)psum);
        }
        finally
        {
            foreach (var handle in handles) handle.Dispose();
            CpuDwConvPass.ReleaseAll(passes);
        }
    }

    /// <summary>dx = sum over branches of the input gradient of branch b given its output gradient dy[b].
    /// Overwrites dx.</summary>
    public static void BackwardData(int n, int c, int h, int w, IReadOnlyList<CpuDwConvBranch> branches,
        IReadOnlyList<ReadOnlyMemory<float>> dy, Span<float> dx)
    {
        ArgumentNullException.ThrowIfNull(dy);
        var shapes = CheckBranches(n, c, h, w, branches);
        CheckPerBranch(shapes[0], dy.Count, branches.Count, i => dy[i].Length, nameof(dy));
        CheckActivation(shapes[0], dx.Length, nameof(dx));
        bool rows16 = CpuDwConvRows16.Applies(h, w, branches), rows8 = CpuDwConvRows8.Applies(h, w, branches);
        bool plane16 = CpuDwConvPlane16.Applies(h, w), tiny = !plane16 && CpuDwConvTinyMap.Applies(h, w);
        bool small = rows16 || rows8 || plane16 || tiny || CpuDwConvSmallMap.Applies(h, w, branches);
        var passes = new CpuDwConvPass[small ? 0 : branches.Count];
        for (int b = 0; b < passes.Length; b++) passes[b] = Prepare(shapes[b], branches[b], flipped: true);
        var handles = new MemoryHandle[branches.Count];
        try
        {
            var dys = new nint[branches.Count];
            for (int b = 0; b < dys.Length; b++)
            {
                handles[b] = dy[b].Pin();
                dys[b] = (nint)handles[b].Pointer;
            }
            fixed (float* pdx = dx)
            {
                if (rows16) CpuDwConvRows16.BackwardData(n, c, branches, dys, (nint)pdx);
                else if (rows8) CpuDwConvRows8.BackwardData(n, c, branches, dys, (nint)pdx);
                else if (plane16) CpuDwConvPlane16.BackwardData(n, c, h, w, branches, dys, (nint)pdx);
                else if (tiny) CpuDwConvTinyMap.BackwardData(n, c, h, w, branches, dys, (nint)pdx);
                else if (small) CpuDwConvSmallMap.BackwardData(n, c, h, w, branches, dys, (nint)pdx);
                else CpuDwConvDrivers.BackwardData(n, c, h, w, passes, dys, (nint)pdx);
            }
        }
        finally
        {
            foreach (var handle in handles) handle.Dispose();
            CpuDwConvPass.ReleaseAll(passes);
        }
    }

    /// <summary>dw[b] = weight gradient of branch b given dy[b]: dw[c, i, j] = sum over n and output pixels p of
    /// x[n, c, p + (i, j) - pad] * dy[b][n, c, p] (the dense gradient with respect to the weight). With
    /// <paramref name="skipMasked"/>, masked taps (not in the branch's tap list or mask) are written as 0 without
    /// being computed. Overwrites every dw[b].</summary>
    public static void BackwardFilter(int n, int c, int h, int w, IReadOnlyList<CpuDwConvBranch> branches,
        ReadOnlySpan<float> x, IReadOnlyList<ReadOnlyMemory<float>> dy, IReadOnlyList<Memory<float>> dw,
        bool skipMasked)
    {
        ArgumentNullException.ThrowIfNull(dy);
        ArgumentNullException.ThrowIfNull(dw);
        var shapes = CheckBranches(n, c, h, w, branches);
        CheckActivation(shapes[0], x.Length, nameof(x));
        CheckPerBranch(shapes[0], dy.Count, branches.Count, i => dy[i].Length, nameof(dy));
        if (dw.Count != branches.Count)
            throw new ArgumentException($"dw must have one entry per branch ({branches.Count}), got {dw.Count}",
                nameof(dw));
        // The 16-pixel-, tiny- and small-map paths need no passes (and no tap lists built from masks).
        bool plane16 = CpuDwConvPlane16.Applies(h, w), tiny = !plane16 && CpuDwConvTinyMap.Applies(h, w);
        bool small = !plane16 && !tiny && CpuDwConvSmallMap.Applies(h, w, branches);
        var passes = new CpuDwConvPass[branches.Count];
        for (int b = 0; b < passes.Length; b++)
        {
            if (dw[b].Length != shapes[b].WeightLength)
                throw new ArgumentException($"dw[{b}] must have C*Kh*Kw = {shapes[b].WeightLength} elements, " +
                    $"got {dw[b].Length}", nameof(dw));
            if (plane16 || tiny || small) continue;
            var br = branches[b];
            CpuDwConvTapList taps = !skipMasked ? CpuDwConvTapList.Dense(c, br.Kh, br.Kw)
                : br.Taps ?? (br.Mask.IsEmpty ? CpuDwConvTapList.Dense(c, br.Kh, br.Kw)
                    : CpuDwConvTapList.FromMask(c, br.Kh, br.Kw, br.Mask.Span, 0));
            passes[b] = new CpuDwConvPass(br.Kh, br.Kw, taps, []);
        }
        var handles = new MemoryHandle[2 * branches.Count];
        try
        {
            var dys = new nint[branches.Count];
            var dws = new nint[branches.Count];
            for (int b = 0; b < dys.Length; b++)
            {
                handles[2 * b] = dy[b].Pin();
                handles[2 * b + 1] = dw[b].Pin();
                dys[b] = (nint)handles[2 * b].Pointer;
                dws[b] = (nint)handles[2 * b + 1].Pointer;
            }
            fixed (float* px = x)
            {
                if (plane16)
                    CpuDwConvPlane16.BackwardFilter(n, c, h, w, branches, (nint)px, dys, dws, skipMasked);
                else if (tiny) CpuDwConvTinyMap.BackwardFilter(n, c, h, w, branches, (nint)px, dys, dws, skipMasked);
                else if (small)
                    CpuDwConvSmallMap.BackwardFilter(n, c, h, w, branches, (nint)px, dys, dws, skipMasked);
                else CpuDwConvDrivers.BackwardFilter(n, c, h, w, passes, (nint)px, dys, dws);
            }
        }
        finally
        {
            foreach (var handle in handles) handle.Dispose();
        }
    }

    /// <summary>The forward paths for small maps, which take the whole call at once.</summary>
    private enum MapPath
    {
        /// <summary>16 x 16 maps on NCHW rows (CpuDwConvRows16.cs).</summary>
        Rows16,

        /// <summary>8 x 8 maps on NCHW rows (CpuDwConvRows8.cs).</summary>
        Rows8,

        /// <summary>16-pixel maps, one vector a plane (CpuDwConvPlane16.cs).</summary>
        Plane16,

        /// <summary>2 x 2 and 1 x 1 maps (CpuDwConvTinyMap.cs).</summary>
        Tiny,

        /// <summary>Other small maps, pixel-major (CpuDwConvSmallMap.cs).</summary>
        Small,
    }

    // A small-map forward path with the outputs pinned.
    private static void ForwardMapPath(MapPath path, int n, int c, int h, int w,
        IReadOnlyList<CpuDwConvBranch> branches, ReadOnlySpan<float> x, IReadOnlyList<Memory<float>> y,
        Span<float> ySum)
    {
        var handles = new MemoryHandle[y.Count];
        try
        {
            var ys = new nint[y.Count];
            for (int b = 0; b < y.Count; b++)
            {
                if (y[b].IsEmpty) continue;
                handles[b] = y[b].Pin();
                ys[b] = (nint)handles[b].Pointer;
            }
            fixed (float* px = x)
            fixed (float* psum = ySum)
            {
                switch (path)
                {
                    case MapPath.Rows16: CpuDwConvRows16.Forward(n, c, branches, (nint)px, ys, (nint)psum); break;
                    case MapPath.Rows8: CpuDwConvRows8.Forward(n, c, branches, (nint)px, ys, (nint)psum); break;
                    case MapPath.Plane16:
                        CpuDwConvPlane16.Forward(n, c, h, w, branches, (nint)px, ys, (nint)psum);
                        break;
                    case MapPath.Tiny: CpuDwConvTinyMap.Forward(n, c, h, w, branches, (nint)px, ys, (nint)psum); break;
                    default: CpuDwConvSmallMap.Forward(n, c, h, w, branches, (nint)px, ys, (nint)psum); break;
                }
            }
        }
        finally
        {
            foreach (var handle in handles) handle.Dispose();
        }
    }

    private static CpuDwConvPass Prepare(CpuDwConvShape shape, CpuDwConvBranch br, bool flipped)
    {
        CpuDwConvTapList taps = br.Taps ?? CpuDwConvTapList.Dense(shape.C, shape.Kh, shape.Kw);
        // A tap list already excludes the masked taps; the mask still multiplies in case weights there are non-zero.
        return CpuDwConvPass.Gather(shape.Kh, shape.Kw, flipped ? taps.Flipped : taps, br.Weight.Span, br.Mask.Span);
    }

    private static CpuDwConvShape[] CheckBranches(int n, int c, int h, int w, IReadOnlyList<CpuDwConvBranch> branches)
    {
        ArgumentNullException.ThrowIfNull(branches);
        if (branches.Count == 0) throw new ArgumentException("at least one branch is required", nameof(branches));
        var shapes = new CpuDwConvShape[branches.Count];
        for (int b = 0; b < branches.Count; b++)
        {
            var br = branches[b];
            var s = new CpuDwConvShape(n, c, h, w, br.Kh, br.Kw);
            try
            {
                CheckCommon(s, br.Weight.Span, br.Mask.Span);
                if (br.Taps is not null) CheckTaps(s, br.Taps);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"branch {b}: {e.Message}", nameof(branches), e);
            }
            shapes[b] = s;
        }
        return shapes;
    }

    private static void CheckPerBranch(CpuDwConvShape shape, int count, int branches, Func<int, int> length, string name)
    {
        if (count != branches)
            throw new ArgumentException($"{name} must have one entry per branch ({branches}), got {count}", name);
        for (int b = 0; b < count; b++) CheckActivation(shape, length(b), $"{name}[{b}]");
    }

    // ---- validation of the engine's arguments ----
    // Both callers validated at their public edge (F through the CPU backend, the C ABI in src/Slak.Native). These
    // checks stay because the plane code behind them is unsafe (pinned pointers): a wrong length from an internal
    // caller must be an exception here, not a write past a buffer. They cost one pass over the branch list per call.

    private static void CheckCommon(CpuDwConvShape shape, ReadOnlySpan<float> w, ReadOnlySpan<float> mask)
    {
        shape.Validate();
        if (w.Length != shape.WeightLength)
            throw new ArgumentException($"w must have C*Kh*Kw = {shape.WeightLength} elements for {shape}, " +
                $"got {w.Length}", nameof(w));
        if (!mask.IsEmpty && mask.Length != shape.WeightLength)
            throw new ArgumentException($"mask must be empty (dense) or have C*Kh*Kw = {shape.WeightLength} " +
                $"elements for {shape}, got {mask.Length}", nameof(mask));
    }

    private static void CheckActivation(CpuDwConvShape shape, int length, string name)
    {
        if (length != shape.ActivationLength)
            throw new ArgumentException($"{name} must have N*C*H*W = {shape.ActivationLength} elements for {shape}, " +
                $"got {length}", name);
    }

    private static void CheckTaps(CpuDwConvShape shape, CpuDwConvTapList taps)
    {
        if (taps.C != shape.C || taps.Kh != shape.Kh || taps.Kw != shape.Kw)
            throw new ArgumentException($"tap list is for C={taps.C}, Kh={taps.Kh}, Kw={taps.Kw} but the shape is " +
                $"{shape}", nameof(taps));
    }
}
