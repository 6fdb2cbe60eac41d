// nn.Linear: y = x W^T + b on the last dimension. SLaK's pwconv1/pwconv2 (the 1x1 convolutions of the block MLP,
// applied on channels-last maps) and the classifier head.
namespace Slak.NN;

/// <summary>Fully connected layer with weight (out, in) and optional bias (out).</summary>
public sealed class Linear : Module
{
    /// <summary>Creates the layer; weight ~ trunc_normal(std 0.02), bias 0 (slak-facts §1.6).</summary>
    public Linear(int inFeatures, int outFeatures, ModuleInit init, bool bias = true)
    {
        ArgumentNullException.ThrowIfNull(init);
        if (inFeatures < 1) throw new ArgumentOutOfRangeException(nameof(inFeatures), inFeatures, "must be >= 1");
        if (outFeatures < 1) throw new ArgumentOutOfRangeException(nameof(outFeatures), outFeatures, "must be >= 1");
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Weight = RegisterParameter("weight", init.TruncNormal([outFeatures, inFeatures], 0.02f));
        if (bias) Bias = RegisterParameter("bias", init.Constant([outFeatures], 0f));
    }

    /// <summary>Input features.</summary>
    public int InFeatures { get; }

    /// <summary>Output features.</summary>
    public int OutFeatures { get; }

    /// <summary>Weight (out, in).</summary>
    public Tensor Weight { get; }

    /// <summary>Bias (out), or null.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => F.Linear(input, Weight, Bias);
}
