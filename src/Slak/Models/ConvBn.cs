// One branch of the large kernel (reference `conv_bn`, models/SLaK.py L38-47): a depthwise convolution named "conv"
// (no bias) followed, when bn is on, by a BatchNorm2d named "bn". Keys: <branch>.conv.weight, <branch>.bn.*.
using Slak.NN;

namespace Slak.Models;

/// <summary>Depthwise conv (+ BatchNorm) branch.</summary>
public sealed class ConvBn : Module
{
    /// <summary>Creates the branch with kernel (Kh, Kw) over <paramref name="channels"/> channels.</summary>
    public ConvBn(int channels, int kernelHeight, int kernelWidth, bool bn, ModuleInit init)
    {
        Conv = RegisterModule("conv", new DepthwiseConv2d(channels, kernelHeight, kernelWidth, init));
        if (bn) Bn = RegisterModule("bn", new BatchNorm2d(channels, init));
    }

    /// <summary>The depthwise convolution.</summary>
    public DepthwiseConv2d Conv { get; }

    /// <summary>The BatchNorm after it, or null (bn=false).</summary>
    public BatchNorm2d? Bn { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Normalize(Conv.Forward(input));

    /// <summary>The BatchNorm part alone, applied to this branch's convolution output (the fused large-kernel
    /// operator computes the convolutions of all branches at once); identity without BatchNorm.</summary>
    public Tensor Normalize(Tensor convOutput) => Bn is null ? convOutput : Bn.Forward(convOutput);
}
