// SLaK's large depthwise kernel (reference ReparamLargeKernelConv, models/SLaK.py L60-123; slak-facts §1.4).
// Decom=true: LoRA1 (K x N) + LoRA2 (N x K) [+ small_conv (N x N) when N < K]; Decom=false: lkb_origin (K x K)
// [+ small_conv when N < K] (RepLKNet / ConvNeXt baselines). Every branch pads "same" (kh/2, kw/2); the output is
// the plain sum of the branch outputs. The reference's merged/reparameterized path is not built (never used).
// All branch convolutions run as ONE fused operator (F.DecomposedDepthwiseConv2d: one pass over the input for all
// branches, one fused input-gradient pass, pruned taps skipped); each branch output then goes through its own
// BatchNorm. In inference (no graph, BatchNorms in eval mode) the BatchNorms are folded into the weights and only
// the sum is computed. Fused = false runs each branch as its own depthwise convolution, the path the fused operator
// is compared with. In training the BatchNorms and the sum run as one operator too (F.BatchNorm2dSum; FusedBatchNormSum
// = false restores one BatchNorm per branch and the adds).
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
        if (CanFoldBatchNorm(input, branches)) return ForwardFolded(input, branches);
        var ys = F.DecomposedDepthwiseConv2d(input, convs.Select(c => c.Weight).ToArray(),
            convs.Select(c => c.WeightMask).ToArray(), convs.Select(c => c.MaskedGrad).ToArray());
        if (CanSumBatchNorms(branches)) return SumBatchNorms(ys, branches);
        for (int b = 0; b < branches.Length; b++)
        {
            var y = branches[b].Normalize(ys[b]);
            sum = sum is null ? y : F.Add(sum, y);
        }
        return sum!;
    }

    /// <summary>True (default; environment variable SLAK_BN_SUM=0 turns it off): in training, the branches'
    /// BatchNorms and the adds between them run as one operator (F.BatchNorm2dSum: the sum written once, the shared
    /// gradient read once for every branch's sums). False: one F.BatchNorm2d per branch and F.Add, the path it is
    /// compared with (the same results).</summary>
    public static bool FusedBatchNormSum { get; set; } = Environment.GetEnvironmentVariable("SLAK_BN_SUM") != "0";

    // The fused sum of BatchNorms covers the training case of every branch with its own BatchNorm on this process's
    // batch; synchronized BatchNorm (data parallel), a branch without BatchNorm or in eval mode take the
    // per-branch path.
    private static bool CanSumBatchNorms(ConvBn[] branches) =>
        FusedBatchNormSum && branches.All(b => b.Bn is { Training: true, Sync: null });

    private static Tensor SumBatchNorms(Tensor[] ys, ConvBn[] branches)
    {
        var bns = branches.Select(b => b.Bn!).ToArray();
        var y = F.BatchNorm2dSum(ys, bns.Select(b => b.Weight).ToArray(), bns.Select(b => b.Bias).ToArray(),
            bns.Select(b => b.RunningMean).ToArray(), bns.Select(b => b.RunningVar).ToArray(),
            bns.Select(b => b.Momentum).ToArray(), bns.Select(b => b.Eps).ToArray());
        foreach (var bn in bns) bn.CountTrainingBatch();
        return y;
    }

    // Inference (nothing recorded, every BatchNorm in eval mode): each BatchNorm is a per-channel affine map, so the
    // block is ONE convolution sum with weights w_b * gamma_b / sqrt(var_b + eps) plus a per-channel shift
    // sum_b (beta_b - mean_b * gamma_b / sqrt(var_b + eps)): one output written instead of one per branch, no
    // per-branch normalization passes and no adds. The folding is host arithmetic in float64 (LargeKernelFolding, the
    // same the ONNX export uses: it reads the branch weights, masks and BatchNorm statistics, a few kilobytes per
    // block); the device runs one operator, F.DecomposedDepthwiseConv2dSum with the summed shifts as its bias.
    private static bool CanFoldBatchNorm(Tensor input, ConvBn[] branches)
    {
        if (branches.Any(b => b.Bn is { Training: true })) return false;
        var tensors = new List<Tensor?> { input };
        foreach (var b in branches)
        {
            tensors.Add(b.Conv.Weight);
            if (b.Bn is { } bn) tensors.AddRange([bn.Weight, bn.Bias]);
        }
        return !Autograd.AutogradEngine.WillRecord(tensors.ToArray());
    }

    private Tensor ForwardFolded(Tensor input, ConvBn[] branches)
    {
        var folded = LargeKernelFolding.FoldBranches(this);
        var dev = input.Device;
        var weights = new Tensor[branches.Length];
        double[]? shift = null;
        try
        {
            for (int b = 0; b < branches.Length; b++)
            {
                weights[b] = Tensor.FromArray(folded[b].Weight, branches[b].Conv.Weight.ShapeArray, dev);
                if (folded[b].Bias is not { } bias) continue;
                shift ??= new double[bias.Length];
                for (int ch = 0; ch < bias.Length; ch++) shift[ch] += bias[ch];
            }
            var masks = branches.Select(b => b.Conv.WeightMask).ToArray();
            if (shift is null) return F.DecomposedDepthwiseConv2dSum(input, weights, masks);
            using var shiftTensor = Tensor.FromArray(Array.ConvertAll(shift, v => (float)v), [shift.Length], dev);
            return F.DecomposedDepthwiseConv2dSum(input, weights, masks, shiftTensor);
        }
        finally
        {
            foreach (var w in weights) w?.Dispose();
        }
    }
}
