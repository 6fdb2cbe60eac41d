// Shape of one depthwise convolution (NCHW, stride 1, "same" zero padding kh/2, kw/2, one filter per channel).
// Kept separate from the kernels so that every entry point validates sizes the same way before touching memory.
namespace Slak.Backends.Cpu;

/// <summary>Sizes of a depthwise convolution: input/output (N, C, H, W), weight (C, Kh, Kw), both kernel sizes
/// odd.</summary>
/// <param name="N">Batch size.</param>
/// <param name="C">Channels (one filter per channel).</param>
/// <param name="H">Image height (output height is the same).</param>
/// <param name="W">Image width (output width is the same).</param>
/// <param name="Kh">Kernel height, odd (padding Kh/2).</param>
/// <param name="Kw">Kernel width, odd (padding Kw/2).</param>
internal readonly record struct CpuDwConvShape(int N, int C, int H, int W, int Kh, int Kw)
{
    /// <summary>Elements of the input or output tensor, N*C*H*W.</summary>
    public long ActivationLength => (long)N * C * H * W;

    /// <summary>Elements of the weight (and mask), C*Kh*Kw.</summary>
    public long WeightLength => (long)C * Kh * Kw;

    /// <summary>Throws <see cref="ArgumentException"/> naming the field and its value when a size is not positive,
    /// a kernel size is even, or a tensor would exceed int.MaxValue elements.</summary>
    public void Validate()
    {
        Positive(N, nameof(N));
        Positive(C, nameof(C));
        Positive(H, nameof(H));
        Positive(W, nameof(W));
        Positive(Kh, nameof(Kh));
        Positive(Kw, nameof(Kw));
        if ((Kh & 1) == 0)
            throw new ArgumentException($"kernel height must be odd, got Kh={Kh}", nameof(Kh));
        if ((Kw & 1) == 0)
            throw new ArgumentException($"kernel width must be odd, got Kw={Kw}", nameof(Kw));
        if (ActivationLength > int.MaxValue)
            throw new ArgumentException($"N*C*H*W = {ActivationLength} exceeds int.MaxValue ({this})", nameof(N));
        if (WeightLength > int.MaxValue)
            throw new ArgumentException($"C*Kh*Kw = {WeightLength} exceeds int.MaxValue ({this})", nameof(C));
    }

    /// <summary>Multiply-accumulates whose input lies inside the image (taps in the padding not counted).</summary>
    public long ValidMacs()
    {
        static long Axis(int len, int k)
        {
            int pad = k / 2;
            long s = 0;
            for (int o = 0; o < len; o++)
                s += Math.Min(len - 1, o + k - 1 - pad) - Math.Max(0, o - pad) + 1;
            return s;
        }
        return (long)N * C * Axis(H, Kh) * Axis(W, Kw);
    }

    private static void Positive(int value, string name)
    {
        if (value <= 0)
            throw new ArgumentException($"{name} must be positive, got {name}={value}", name);
    }
}
