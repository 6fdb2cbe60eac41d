// The depthwise convolutions (family dwconv): the decomposed large-kernel depthwise convolution as one differentiable
// operator with one output per branch, and the single-kernel DepthwiseConv2d as its one-branch case (one family of
// backend kernels, IBackend.DwConv.cs). Each public function validates its arguments once; both then run
// ONE autograd node with one output per branch, whose backward receives every branch's output gradient at once and
// runs one fused input-gradient pass over all branches plus the per-branch weight gradients. Branch outputs are
// separate tensors because each feeds its own training BatchNorm; no stacked tensor, no slice op and no gradient of
// a stacked shape filled with zeros. A branch whose output received no gradient contributes nothing (the fused
// kernels take a null gradient as "skip this branch").
using Slak.Autograd;

namespace Slak;

public static partial class F
{
    /// <summary>Decomposed depthwise convolution: for each branch b, y[b] = depthwise conv of x (N, C, H, W) with
    /// weights[b] (C, 1, Kh_b, Kw_b) used as weights[b] * masks[b] (mask null: dense), "same" zero padding
    /// (Kh_b/2, Kw_b/2), stride 1, no bias. All branches are computed in one pass over x; pruned taps are skipped.
    /// With <paramref name="maskedGrad"/>[b] (default true) a masked branch's weight gradient is computed only for
    /// live taps and is exactly 0 on pruned ones (our sparse semantics); false gives the dense gradient of the
    /// effective weight (the reference code's semantics). Returns one tensor per branch, shaped like x.</summary>
    public static Tensor[] DecomposedDepthwiseConv2d(Tensor x, IReadOnlyList<Tensor> weights,
        IReadOnlyList<Tensor?>? masks = null, IReadOnlyList<bool>? maskedGrad = null)
    {
        const string op = nameof(DecomposedDepthwiseConv2d);
        var (w, m, skip) = CheckDecomposed(op, x, weights, masks, maskedGrad);
        return DwConvBranches(op, x, w, m, skip);
    }

    /// <summary>Depthwise convolution with "same" zero padding (Kh/2, Kw/2), stride 1, no bias: x (N, C, H, W),
    /// weight (C, 1, Kh, Kw) with Kh and Kw odd, optional 0/1 mask of the weight's shape (the weight is used as
    /// weight * mask). With <paramref name="maskedGrad"/> the weight gradient is computed only for live taps
    /// (pruned taps get exactly 0), which is what our sparse semantics need and lets kernels skip them. The
    /// one-branch case of <see cref="DecomposedDepthwiseConv2d"/>: the same backend kernels.</summary>
    public static Tensor DepthwiseConv2d(Tensor x, Tensor weight, Tensor? mask = null, bool maskedGrad = true)
    {
        const string op = nameof(DepthwiseConv2d);
        Check.Rank(x, 4, op, nameof(x), "(N, C, H, W)");
        CheckBranch(op, x, weight, nameof(weight), nameof(weight), mask, nameof(mask));
        return DwConvBranches(op, x, [weight], [mask], [maskedGrad ? mask : null])[0];
    }

    // The operator of the family, behind both public edges (which validated every argument): one output per branch,
    // computed by the backend's DecomposedDwConv* kernels; one autograd node whose backward runs one input-gradient
    // pass over the branches that received a gradient and one weight-gradient call for the weights that need one.
    // skip[b] is the mask whose pruned taps get no weight gradient (null: the dense gradient).
    private static Tensor[] DwConvBranches(string op, Tensor x, Tensor[] w, Tensor?[] m, Tensor?[] skip)
    {
        int nb = w.Length;
        var ys = new Tensor[nb];
        for (int b = 0; b < nb; b++) ys[b] = Like(x);
        var be = x.Backend;
        be.DecomposedDwConvForward(x, w, m, ys);
        Tensor[] inputs = [x, .. w];
        if (!AutogradEngine.WillRecord(inputs)) return ys;

        AutogradEngine.Record(ys, op, inputs, grads =>
        {
            var result = new Tensor?[nb + 1];
            var dys = grads.ToArray();
            if (x.RequiresGrad)
            {
                result[0] = Like(x);
                be.DecomposedDwConvBackwardData(dys, w, m, result[0]!);
            }
            var dws = new Tensor?[nb];
            bool anyW = false;
            for (int b = 0; b < nb; b++)
            {
                if (!w[b].RequiresGrad) continue;
                dws[b] = result[b + 1] = Like(w[b]);
                anyW = true;
            }
            if (anyW) be.DecomposedDwConvBackwardFilter(x, dys, skip, dws);
            return result;
        });
        return ys;
    }

    private static (Tensor[] W, Tensor?[] M, Tensor?[] Skip) CheckDecomposed(string op, Tensor x,
        IReadOnlyList<Tensor> weights, IReadOnlyList<Tensor?>? masks, IReadOnlyList<bool>? maskedGrad)
    {
        Check.Rank(x, 4, op, nameof(x), "(N, C, H, W)");
        ArgumentNullException.ThrowIfNull(weights);
        int nb = weights.Count;
        if (nb == 0) throw new ArgumentException($"{op}: at least one branch weight is required", nameof(weights));
        if (masks is not null && masks.Count != nb)
            throw new ArgumentException($"{op}: masks must have one entry per branch ({nb}), got {masks.Count}", nameof(masks));
        if (maskedGrad is not null && maskedGrad.Count != nb)
            throw new ArgumentException($"{op}: maskedGrad must have one entry per branch ({nb}), got {maskedGrad.Count}", nameof(maskedGrad));
        var w = new Tensor[nb];
        var m = new Tensor?[nb];
        var skip = new Tensor?[nb];
        for (int b = 0; b < nb; b++)
        {
            var wb = weights[b] ?? throw new ArgumentNullException(nameof(weights), $"{op}: weights[{b}] is null");
            var mb = masks?[b];
            CheckBranch(op, x, wb, $"weights[{b}]", nameof(weights), mb, $"masks[{b}]");
            w[b] = wb;
            m[b] = mb;
            skip[b] = maskedGrad is null || maskedGrad[b] ? mb : null;
        }
        return (w, m, skip);
    }

    // One branch: weight (C, 1, Kh, Kw) on x's device with odd Kh and Kw, and its mask (if any) of the same shape.
    // Shape errors name paramName (the weights list of the decomposed operator, the weight of the single one).
    private static void CheckBranch(string op, Tensor x, Tensor weight, string weightArg, string paramName, Tensor? mask,
        string maskArg)
    {
        Check.Rank(weight, 4, op, weightArg, "(C, 1, Kh, Kw)");
        Check.SameDevice(op, x, nameof(x), weight, weightArg);
        int c = x.Size(1), kh = weight.Size(2), kw = weight.Size(3);
        if (weight.Size(0) != c || weight.Size(1) != 1)
            throw new ArgumentException($"{op}: {weightArg} must have shape ({c}, 1, Kh, Kw) for x {Shapes.Format(x.Shape)}, got {Shapes.Format(weight.Shape)}", paramName);
        if (kh % 2 == 0 || kw % 2 == 0)
            throw new ArgumentException($"{op}: kernel sizes must be odd for 'same' padding, got kh={kh}, kw={kw} in {weightArg}", paramName);
        if (mask is null) return;
        Check.SameDevice(op, x, nameof(x), mask, maskArg);
        Check.SameShape(op, weight, weightArg, mask, maskArg);
    }
}
