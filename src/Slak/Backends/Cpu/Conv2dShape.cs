// Geometry of a dense 2-D convolution (NCHW, weight (Cout, Cin, Kh, Kw)), validated once and shared by the CPU
// kernels (and later the CUDA ones) so every kernel agrees on output size and on what counts as bad input.
namespace Slak.Backends.Cpu;

/// <summary>Shape of a dense (groups = 1) 2-D convolution: input (N, Cin, H, W), weight (Cout, Cin, Kh, Kw),
/// output (N, Cout, OutH, OutW), zero padding PadH/PadW on each side.</summary>
internal readonly record struct Conv2dShape(int N, int Cin, int H, int W, int Cout, int Kh, int Kw, int StrideH,
    int StrideW, int PadH, int PadW)
{
    /// <summary>Output height: (H + 2*PadH - Kh) / StrideH + 1.</summary>
    public int OutH => (H + 2 * PadH - Kh) / StrideH + 1;

    /// <summary>Output width: (W + 2*PadW - Kw) / StrideW + 1.</summary>
    public int OutW => (W + 2 * PadW - Kw) / StrideW + 1;

    /// <summary>Elements of the input, N*Cin*H*W.</summary>
    public long InputSize => (long)N * Cin * H * W;

    /// <summary>Elements of the weight, Cout*Cin*Kh*Kw.</summary>
    public long WeightSize => (long)Cout * Cin * Kh * Kw;

    /// <summary>Elements of the output, N*Cout*OutH*OutW.</summary>
    public long OutputSize => (long)N * Cout * OutH * OutW;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad field and its value.</summary>
    public void Validate()
    {
        Positive(N, nameof(N));
        Positive(Cin, nameof(Cin));
        Positive(H, nameof(H));
        Positive(W, nameof(W));
        Positive(Cout, nameof(Cout));
        Positive(Kh, nameof(Kh));
        Positive(Kw, nameof(Kw));
        Positive(StrideH, nameof(StrideH));
        Positive(StrideW, nameof(StrideW));
        if (PadH < 0) throw new ArgumentException($"PadH must be >= 0, got PadH={PadH}", nameof(PadH));
        if (PadW < 0) throw new ArgumentException($"PadW must be >= 0, got PadW={PadW}", nameof(PadW));
        if (Kh > H + 2 * PadH)
            throw new ArgumentException($"Kh={Kh} is larger than the padded input height H+2*PadH={H + 2 * PadH}",
                nameof(Kh));
        if (Kw > W + 2 * PadW)
            throw new ArgumentException($"Kw={Kw} is larger than the padded input width W+2*PadW={W + 2 * PadW}",
                nameof(Kw));
        if (InputSize > int.MaxValue || OutputSize > int.MaxValue || WeightSize > int.MaxValue)
            throw new ArgumentException($"tensor too large for one span: input {InputSize}, output {OutputSize}, " +
                                        $"weight {WeightSize} elements", nameof(N));
    }

    private static void Positive(int value, string name)
    {
        if (value <= 0) throw new ArgumentException($"{name} must be > 0, got {name}={value}", name);
    }
}
