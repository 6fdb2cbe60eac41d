// Public entry points of the CPU depthwise convolution for one branch (NCHW float32, stride 1, "same" zero padding,
// cross-correlation, weight (C, Kh, Kw), optional 0/1 mask used as w*mask). Dense calls take a mask span (empty =
// dense); sparse-aware calls take a CpuDwConvTapList and skip pruned taps. The work is done by CpuDwConvDrivers.
namespace Slak.Backends.Cpu;

/// <summary>Depthwise 2-D convolution on the CPU: forward, input gradient and weight gradient.</summary>
internal static unsafe class CpuDwConv
{
    /// <summary>y = conv(x, w*mask). x, y: (N, C, H, W); w, mask: (C, Kh, Kw); an empty mask means dense.
    /// Overwrites y.</summary>
    public static void Forward(CpuDwConvShape shape, ReadOnlySpan<float> x, ReadOnlySpan<float> w,
        ReadOnlySpan<float> mask, Span<float> y)
    {
        CheckCommon(shape, w, mask);
        CheckActivation(shape, x.Length, nameof(x));
        CheckActivation(shape, y.Length, nameof(y));
        var pass = CpuDwConvPass.Gather(shape.Kh, shape.Kw, CpuDwConvTapList.Dense(shape.C, shape.Kh, shape.Kw), w, mask);
        RunForward(shape, pass, x, y);
    }

    /// <summary>Sparse-aware forward: only the taps in <paramref name="taps"/> are computed (weights elsewhere are
    /// treated as zero). Overwrites y.</summary>
    public static void Forward(CpuDwConvShape shape, ReadOnlySpan<float> x, ReadOnlySpan<float> w, CpuDwConvTapList taps,
        Span<float> y)
    {
        CheckCommon(shape, w, ReadOnlySpan<float>.Empty);
        CheckTaps(shape, taps);
        CheckActivation(shape, x.Length, nameof(x));
        CheckActivation(shape, y.Length, nameof(y));
        RunForward(shape, CpuDwConvPass.Gather(shape.Kh, shape.Kw, taps, w, ReadOnlySpan<float>.Empty), x, y);
    }

    /// <summary>dx = correlation of dy with the flipped kernel w*mask (the input gradient). Overwrites dx.</summary>
    public static void BackwardData(CpuDwConvShape shape, ReadOnlySpan<float> dy, ReadOnlySpan<float> w,
        ReadOnlySpan<float> mask, Span<float> dx)
    {
        CheckCommon(shape, w, mask);
        CheckActivation(shape, dy.Length, nameof(dy));
        CheckActivation(shape, dx.Length, nameof(dx));
        var taps = CpuDwConvTapList.Dense(shape.C, shape.Kh, shape.Kw).Flipped;
        RunBackwardData(shape, CpuDwConvPass.Gather(shape.Kh, shape.Kw, taps, w, mask), dy, dx);
    }

    /// <summary>Sparse-aware input gradient: only the taps in <paramref name="taps"/> contribute.
    /// Overwrites dx.</summary>
    public static void BackwardData(CpuDwConvShape shape, ReadOnlySpan<float> dy, ReadOnlySpan<float> w, CpuDwConvTapList taps,
        Span<float> dx)
    {
        CheckCommon(shape, w, ReadOnlySpan<float>.Empty);
        CheckTaps(shape, taps);
        CheckActivation(shape, dy.Length, nameof(dy));
        CheckActivation(shape, dx.Length, nameof(dx));
        RunBackwardData(shape, CpuDwConvPass.Gather(shape.Kh, shape.Kw, taps.Flipped, w, ReadOnlySpan<float>.Empty), dy, dx);
    }

    /// <summary>dw[c, i, j] = sum over n and output pixels p of x[n, c, p + (i, j) - pad] * dy[n, c, p] (the dense
    /// gradient with respect to the weight). With <paramref name="skipMasked"/>, taps where the mask is 0 are not
    /// computed and are written as exactly 0 (an empty mask then means dense). Overwrites dw.</summary>
    public static void BackwardFilter(CpuDwConvShape shape, ReadOnlySpan<float> x, ReadOnlySpan<float> dy,
        Span<float> dw, ReadOnlySpan<float> mask, bool skipMasked)
    {
        CheckCommon(shape, dw, mask, nameof(dw));
        CheckActivation(shape, x.Length, nameof(x));
        CheckActivation(shape, dy.Length, nameof(dy));
        var taps = skipMasked && !mask.IsEmpty
            ? CpuDwConvTapList.FromMask(shape.C, shape.Kh, shape.Kw, mask, 0)
            : CpuDwConvTapList.Dense(shape.C, shape.Kh, shape.Kw);
        RunBackwardFilter(shape, taps, x, dy, dw);
    }

    /// <summary>Sparse-aware weight gradient: the taps in <paramref name="taps"/> are computed, all others written
    /// as exactly 0. Overwrites dw.</summary>
    public static void BackwardFilter(CpuDwConvShape shape, ReadOnlySpan<float> x, ReadOnlySpan<float> dy,
        Span<float> dw, CpuDwConvTapList taps)
    {
        CheckCommon(shape, dw, ReadOnlySpan<float>.Empty, nameof(dw));
        CheckTaps(shape, taps);
        CheckActivation(shape, x.Length, nameof(x));
        CheckActivation(shape, dy.Length, nameof(dy));
        RunBackwardFilter(shape, taps, x, dy, dw);
    }

    private static void RunForward(CpuDwConvShape s, CpuDwConvPass pass, ReadOnlySpan<float> x, Span<float> y)
    {
        try
        {
            fixed (float* px = x)
            fixed (float* py = y)
                CpuDwConvDrivers.Forward(s.N, s.C, s.H, s.W, [pass], (nint)px, [(nint)py], 0);
        }
        finally
        {
            pass.Release();
        }
    }

    private static void RunBackwardData(CpuDwConvShape s, CpuDwConvPass flipped, ReadOnlySpan<float> dy, Span<float> dx)
    {
        try
        {
            fixed (float* pdy = dy)
            fixed (float* pdx = dx)
                CpuDwConvDrivers.BackwardData(s.N, s.C, s.H, s.W, [flipped], [(nint)pdy], (nint)pdx);
        }
        finally
        {
            flipped.Release();
        }
    }

    private static void RunBackwardFilter(CpuDwConvShape s, CpuDwConvTapList taps, ReadOnlySpan<float> x, ReadOnlySpan<float> dy,
        Span<float> dw)
    {
        var pass = new CpuDwConvPass(s.Kh, s.Kw, taps, []);
        fixed (float* px = x)
        fixed (float* pdy = dy)
        fixed (float* pdw = dw)
            CpuDwConvDrivers.BackwardFilter(s.N, s.C, s.H, s.W, [pass], (nint)px, [(nint)pdy], [(nint)pdw]);
    }

    // ---- validation shared with CpuDwConvDecomposed ----

    internal static void CheckCommon(CpuDwConvShape shape, ReadOnlySpan<float> w, ReadOnlySpan<float> mask,
        string wName = "w")
    {
        shape.Validate();
        if (w.Length != shape.WeightLength)
            throw new ArgumentException($"{wName} must have C*Kh*Kw = {shape.WeightLength} elements for {shape}, " +
                $"got {w.Length}", wName);
        if (!mask.IsEmpty && mask.Length != shape.WeightLength)
            throw new ArgumentException($"mask must be empty (dense) or have C*Kh*Kw = {shape.WeightLength} " +
                $"elements for {shape}, got {mask.Length}", nameof(mask));
    }

    internal static void CheckActivation(CpuDwConvShape shape, int length, string name)
    {
        if (length != shape.ActivationLength)
            throw new ArgumentException($"{name} must have N*C*H*W = {shape.ActivationLength} elements for {shape}, " +
                $"got {length}", name);
    }

    internal static void CheckTaps(CpuDwConvShape shape, CpuDwConvTapList? taps, string name = "taps")
    {
        ArgumentNullException.ThrowIfNull(taps, name);
        if (taps.C != shape.C || taps.Kh != shape.Kh || taps.Kw != shape.Kw)
            throw new ArgumentException($"tap list is for C={taps.C}, Kh={taps.Kh}, Kw={taps.Kw} but the shape is " +
                $"{shape}", name);
    }
}
