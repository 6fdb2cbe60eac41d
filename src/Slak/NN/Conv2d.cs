// Dense nn.Conv2d (groups = 1) with bias: SLaK's 4x4/4 stem and 2x2/2 downsampling convolutions.
namespace Slak.NN;

/// <summary>Dense 2-D convolution with weight (Cout, Cin, K, K) and optional bias (Cout).</summary>
public sealed class Conv2d : Module
{
    /// <summary>Creates the layer; weight ~ trunc_normal(std 0.02), bias 0 (slak-facts §1.6).</summary>
    public Conv2d(int inChannels, int outChannels, int kernelSize, ModuleInit init, int stride = 1, int padding = 0,
                  bool bias = true)
    {
        ArgumentNullException.ThrowIfNull(init);
        if (inChannels < 1) throw new ArgumentOutOfRangeException(nameof(inChannels), inChannels, "must be >= 1");
        if (outChannels < 1) throw new ArgumentOutOfRangeException(nameof(outChannels), outChannels, "must be >= 1");
        if (kernelSize < 1) throw new ArgumentOutOfRangeException(nameof(kernelSize), kernelSize, "must be >= 1");
        if (stride < 1) throw new ArgumentOutOfRangeException(nameof(stride), stride, "must be >= 1");
        if (padding < 0) throw new ArgumentOutOfRangeException(nameof(padding), padding, "must be >= 0");
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Stride = stride;
        Padding = padding;
        Weight = RegisterParameter("weight",
            init.TruncNormal([outChannels, inChannels, kernelSize, kernelSize], 0.02f));
        if (bias) Bias = RegisterParameter("bias", init.Constant([outChannels], 0f));
    }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }

    /// <summary>Output channels.</summary>
    public int OutChannels { get; }

    /// <summary>Kernel height and width.</summary>
    public int KernelSize { get; }

    /// <summary>Stride (both axes).</summary>
    public int Stride { get; }

    /// <summary>Zero padding (both axes).</summary>
    public int Padding { get; }

    /// <summary>Weight (Cout, Cin, K, K).</summary>
    public Tensor Weight { get; }

    /// <summary>Bias (Cout), or null.</summary>
    public Tensor? Bias { get; }

    /// <summary>Output spatial size for an input of size <paramref name="size"/> (floor, like PyTorch).</summary>
    public int OutputSize(int size) => (size + 2 * Padding - KernelSize) / Stride + 1;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => F.Conv2d(input, Weight, Bias, Stride, Padding);
}
