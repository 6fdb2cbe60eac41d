// SLaK's large depthwise kernel (reference ReparamLargeKernelConv, models/SLaK.py L60-123; slak-facts §1.4).
// Decom=true: LoRA1 (K x N) + LoRA2 (N x K) [+ small_conv (N x N) when N < K]; Decom=false: lkb_origin (K x K)
// [+ small_conv when N < K] (RepLKNet / ConvNeXt baselines). Every branch pads "same" (kh/2, kw/2); the output is
// the plain sum of the branch outputs. The reference's merged/reparameterized path is not built (never used).
// All branch convolutions run as ONE fused operator (F.DecomposedDepthwiseConv2d: one pass over the input for all
// branches, one fused input-gradient pass, pruned taps skipped); each branch output then goes through its own
// BatchNorm. The modules and their state_dict keys are unchanged; Fused = false runs the old per-branch path.
using Slak.NN;

namespace Slak.Models;

/// <summary>The decomposed (or dense) large-kernel depthwise convolution of a SLaK block.</summary>
public sealed class ReparamLargeKernelConv : Module
{
    /// <summary>Creates the branches for kernel <paramref name="kernelSize"/> (K) and
    /// <paramref name="smallKernel"/> (N).</summary>
    public ReparamLargeKernelConv(int channels, int kernelSize, int smallKernel, bool decom, bool bn, ModuleInit init)
    {
        if (kernelSize < 1 || kernelSize % 2 == 0)
            throw new ArgumentException(
                $"kernel size K must be odd and positive, got K={kernelSize}", nameof(kernelSize));
        if (smallKernel < 1 || (smallKernel % 2 == 0 && (decom || smallKernel < kernelSize)))
            throw new ArgumentException(
                $"small kernel size N must be positive, and odd when used (Decom or N < K), got N={smallKernel}, " +
                $"K={kernelSize}", nameof(smallKernel));
        KernelSize = kernelSize;
        SmallKernel = smallKernel;
        Decom = decom;
        if (decom)
        {
            // Decom with N >= K would give a (K, N) kernel wider than K; the reference builds it as is.
            LoRA1 = RegisterModule("LoRA1", new ConvBn(channels, kernelSize, smallKernel, bn, init));
            LoRA2 = RegisterModule("LoRA2", new ConvBn(channels, smallKernel, kernelSize, bn, init));
        }
        else
        {
            LkbOrigin = RegisterModule("lkb_origin", new ConvBn(channels, kernelSize, kernelSize, bn, init));
        }
        if (smallKernel < kernelSize)
            SmallConv = RegisterModule("small_conv", new ConvBn(channels, smallKernel, smallKernel, bn, init));
    }

    /// <summary>K.</summary>
    public int KernelSize { get; }

    /// <summary>N.</summary>
    public int SmallKernel { get; }

    /// <summary>Decomposed (K x N + N x K) or dense (K x K).</summary>
    public bool Decom { get; }

    /// <summary>K x N branch (Decom only).</summary>
    public ConvBn? LoRA1 { get; }

    /// <summary>N x K branch (Decom only).</summary>
    public ConvBn? LoRA2 { get; }

    /// <summary>Dense K x K branch (not Decom).</summary>
    public ConvBn? LkbOrigin { get; }

    /// <summary>N x N branch (only when N &lt; K).</summary>
    public ConvBn? SmallConv { get; }

    /// <summary>The branches in state_dict order.</summary>
    public IEnumerable<ConvBn> Branches => new[] { LoRA1, LoRA2, LkbOrigin, SmallConv }.OfType<ConvBn>();

    /// <summary>True (default): the branches' convolutions run as one fused operator. False: each branch runs its
    /// own depthwise convolution (the unfused path, kept for comparisons).</summary>
    public bool Fused { get; set; } = true;

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        var branches = Branches.ToArray();
        Tensor? sum = null;
        if (!Fused)
        {
            foreach (var branch in branches)
            {
                var y = branch.Forward(input);
                sum = sum is null ? y : F.Add(sum, y);
            }
            return sum!;
        }
        var convs = branches.Select(b => b.Conv).ToArray();
        var ys = F.DecomposedDepthwiseConv2d(input, convs.Select(c => c.Weight).ToArray(),
            convs.Select(c => c.WeightMask).ToArray(), convs.Select(c => c.MaskedGrad).ToArray());
        for (int b = 0; b < branches.Length; b++)
        {
            var y = branches[b].Normalize(ys[b]);
            sum = sum is null ? y : F.Add(sum, y);
        }
        return sum!;
    }
}
