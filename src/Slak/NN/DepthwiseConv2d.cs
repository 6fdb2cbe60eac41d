// Depthwise convolution with a rectangular kernel, "same" zero padding (kh/2, kw/2), stride 1 and no bias: the
// branches of SLaK's large kernel (51x5, 5x51, 5x5). The sparse trainer sets WeightMask so the kernel can skip
// pruned taps and (with MaskedGrad) compute weight gradients only for live taps.
namespace Slak.NN;

/// <summary>Depthwise convolution, weight (C, 1, Kh, Kw), Kh and Kw odd.</summary>
public sealed class DepthwiseConv2d : Module
{
    private Tensor? _mask;

    /// <summary>Creates the layer; weight ~ trunc_normal(std 0.02) like every nn.Conv2d of the reference.</summary>
    public DepthwiseConv2d(int channels, int kernelHeight, int kernelWidth, ModuleInit init)
    {
        ArgumentNullException.ThrowIfNull(init);
        if (channels < 1) throw new ArgumentOutOfRangeException(nameof(channels), channels, "must be >= 1");
        if (kernelHeight < 1 || kernelHeight % 2 == 0 || kernelWidth < 1 || kernelWidth % 2 == 0)
            throw new ArgumentException(
                $"depthwise kernel sizes must be odd and positive, got kh={kernelHeight}, " +
                $"kw={kernelWidth}", nameof(kernelHeight));
        Channels = channels;
        KernelHeight = kernelHeight;
        KernelWidth = kernelWidth;
        Weight = RegisterParameter("weight", init.TruncNormal([channels, 1, kernelHeight, kernelWidth], 0.02f));
    }

    /// <summary>Channels C.</summary>
    public int Channels { get; }

    /// <summary>Kernel height (rows).</summary>
    public int KernelHeight { get; }

    /// <summary>Kernel width (columns).</summary>
    public int KernelWidth { get; }

    /// <summary>Weight (C, 1, Kh, Kw).</summary>
    public Tensor Weight { get; }

    /// <summary>Optional 0/1 mask of the weight's shape, set by the sparse trainer (null: dense).</summary>
    public Tensor? WeightMask
    {
        get => _mask;
        set
        {
            if (value is not null && !value.Shape.SequenceEqual(Weight.Shape))
                throw new ArgumentException(
                    $"mask shape {Shapes.Format(value.Shape)} differs from weight " +
                    $"{Shapes.Format(Weight.Shape)}", nameof(value));
            _mask = value;
        }
    }

    /// <summary>With a mask: compute the weight gradient only for live taps (our sparse semantics). False
    /// reproduces the reference (dense gradients).</summary>
    public bool MaskedGrad { get; set; } = true;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => F.DepthwiseConv2d(input, Weight, _mask, MaskedGrad);
}
