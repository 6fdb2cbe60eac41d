// A SLaK block (reference Block, models/SLaK.py L126-166; slak-facts §1.3): large_kernel -> NHWC -> LayerNorm (eps
// 1e-6; the permute and the norm run as one operator) -> pwconv1 (C -> 4C) -> GELU -> pwconv2 (4C -> C) -> gamma
// (layer scale) -> NCHW -> x + DropPath(y) (the last four as one operator).
// gamma is registered first because in PyTorch it is a parameter of the block itself, listed before its children.
using Slak.NN;

namespace Slak.Models;

/// <summary>ConvNeXt-style block with SLaK's large kernel.</summary>
public sealed class SlakBlock : Module
{
    /// <summary>Creates a block of width <paramref name="dim"/>.</summary>
    public SlakBlock(int dim, float dropPath, float layerScaleInitValue, int kernelSize, int smallKernel, bool decom,
                     bool bn, ModuleInit init)
    {
        ArgumentNullException.ThrowIfNull(init);
        if (dim < 1) throw new ArgumentOutOfRangeException(nameof(dim), dim, "block width must be >= 1");
        Dim = dim;
        if (layerScaleInitValue > 0) Gamma = RegisterParameter("gamma", init.Constant([dim], layerScaleInitValue));
        LargeKernel = RegisterModule("large_kernel",
            new ReparamLargeKernelConv(dim, kernelSize, smallKernel, decom, bn, init));
        Norm = RegisterModule("norm", new LayerNorm(dim, init, 1e-6f, LayerNormFormat.ChannelsLast));
        PwConv1 = RegisterModule("pwconv1", new Linear(dim, 4 * dim, init));
        Act = RegisterModule("act", new Gelu());
        PwConv2 = RegisterModule("pwconv2", new Linear(4 * dim, dim, init));
        DropPath = RegisterModule("drop_path", new DropPath(dropPath));
    }

    /// <summary>Width C.</summary>
    public int Dim { get; }

    /// <summary>Layer scale (C), or null when layer_scale_init_value &lt;= 0.</summary>
    public Tensor? Gamma { get; }

    /// <summary>The depthwise large kernel.</summary>
    public ReparamLargeKernelConv LargeKernel { get; }

    /// <summary>Channels-last LayerNorm.</summary>
    public LayerNorm Norm { get; }

    /// <summary>C -> 4C.</summary>
    public Linear PwConv1 { get; }

    /// <summary>GELU.</summary>
    public Gelu Act { get; }

    /// <summary>4C -> C.</summary>
    public Linear PwConv2 { get; }

    /// <summary>Stochastic depth on the residual branch.</summary>
    public DropPath DropPath { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        var x = LargeKernel.Forward(input);
        x = F.LayerNormToChannelsLast(x, Norm.Weight, Norm.Bias, Norm.Eps); // the permute and the norm as one operator
        x = PwConv1.Bias is { } b1 && PwConv2.Bias is { } b2
            ? F.LinearGeluLinear(x, PwConv1.Weight, b1, PwConv2.Weight, b2) // one operator: GEMM epilogues
            : PwConv2.Forward(Act.Forward(PwConv1.Forward(x)));
        // Layer scale, DropPath, the permute back to NCHW and the residual add as one operator.
        return F.ChannelsLastResidual(input, x, Gamma, DropPath.SampleScale(input.Size(0), input.Device));
    }
}
