// The effective receptive field map of a model (slak-facts §4.7; the procedure of RepLKNet's and SLaK's
// erf/visualize_erf.py): evaluation mode; per image, the last stage's feature map (before pooling and the final
// norm, SlakModel.ForwardFeatures); score = sum over channels of ReLU(feature at the centre position (h // 2, w // 2));
// the gradient of the score with respect to the input image; ReLU; summed over the input channels. The maps are
// averaged over the images; an image whose map has a NaN is skipped and counted.
//
// Gradient: d score / d features is the constant G with G[n, c, h // 2, w // 2] = 1 where that feature is > 0 and
// 0 elsewhere, so score = sum(features * G) has exactly the wanted value and gradient with the existing operators.
// In evaluation mode images do not interact (BatchNorm uses running statistics), so a batch of images is one
// backward pass and image n's map is the n-th slice of the input gradient. Weights are frozen (no weight gradients
// are computed).
using Slak.Autograd;
using Slak.Models;

namespace Slak.Analysis;

/// <summary>The mean ERF map of a set of images.</summary>
/// <param name="Height">H of the input images (and the map).</param>
/// <param name="Width">W.</param>
/// <param name="Map">The mean map (H x W, row-major, before any log), float64.</param>
/// <param name="Images">Images averaged.</param>
/// <param name="SkippedNaN">Images skipped because their map had a NaN.</param>
public sealed record ErfMap(int Height, int Width, double[] Map, int Images, int SkippedNaN);

/// <summary>Computes effective receptive field maps.</summary>
public static class EffectiveReceptiveField
{
    /// <summary>The mean ERF map of <paramref name="images"/> ((N, C, H, W) floats, already normalised; shape in
    /// <paramref name="shape"/>) through <paramref name="model"/> on its device, <paramref name="batchSize"/>
    /// images per backward pass. The model is put in evaluation mode and its parameters stop requiring gradients
    /// (it is meant to be loaded for this analysis).</summary>
    public static ErfMap Compute(SlakModel model, ReadOnlySpan<float> images, int[] shape, int batchSize = 1)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(shape);
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be >= 1");
        if (shape.Length != 4 || shape[0] < 1)
            throw new ArgumentException($"images must be (N, C, H, W) with N >= 1, got {Shapes.Format(shape)}", nameof(shape));
        if (shape[1] != model.Config.InChans)
            throw new ArgumentException(
                $"images have {shape[1]} channels but the model expects in_chans={model.Config.InChans}", nameof(shape));
        if (images.Length != Shapes.Numel(shape))
            throw new ArgumentException(
                $"{images.Length} values do not make images of shape {Shapes.Format(shape)}", nameof(images));
        model.Config.StageSizes(shape[2], shape[3]);
        int n = shape[0], c = shape[1], h = shape[2], w = shape[3], plane = h * w, per = c * plane;
        model.Eval();
        foreach (var p in model.Parameters()) p.RequiresGrad = false;
        var device = model.Head.Weight.Device;
        var sum = new double[plane];
        int used = 0, skipped = 0;
        var grad = new float[(long)batchSize * per];
        var map = new double[plane];
        for (int start = 0; start < n; start += batchSize)
        {
            int count = Math.Min(batchSize, n - start);
            using (var scope = TensorScope.Begin())
            {
                var x = Tensor.FromArray(images.Slice(start * per, count * per), [count, c, h, w], device);
                x.RequiresGrad = true;
                var features = model.ForwardFeatures(x);
                var selector = CentreSelector(features);
                var score = F.Sum(F.Mul(features, selector));
                score.Backward();
                var g = x.Grad ?? throw new InvalidOperationException("the input received no gradient");
                g.Backend.CopyToHost(g, grad.AsSpan(0, count * per));
            }
            for (int i = 0; i < count; i++)
            {
                Array.Clear(map);
                bool nan = false;
                for (int ch = 0; ch < c; ch++)
                {
                    var src = grad.AsSpan(i * per + ch * plane, plane);
                    for (int k = 0; k < plane; k++)
                    {
                        float v = src[k];
                        if (float.IsNaN(v)) nan = true;
                        else if (v > 0) map[k] += v;
                    }
                }
                if (nan) { skipped++; continue; }
                for (int k = 0; k < plane; k++) sum[k] += map[k];
                used++;
            }
        }
        if (used > 0)
            for (int k = 0; k < plane; k++) sum[k] /= used;
        else
            Array.Fill(sum, double.NaN);
        return new ErfMap(h, w, sum, used, skipped);
    }

    // G: 1 at (n, c, h // 2, w // 2) where the feature there is > 0, else 0 (a constant: no gradient flows into it).
    private static Tensor CentreSelector(Tensor features)
    {
        int n = features.Size(0), c = features.Size(1), fh = features.Size(2), fw = features.Size(3);
        var values = features.ToArray();
        var g = new float[values.Length];
        int cy = fh / 2, cx = fw / 2;
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
            {
                long at = (((long)i * c + ch) * fh + cy) * fw + cx;
                if (values[at] > 0) g[at] = 1f;
            }
        return Tensor.FromArray(g, [n, c, fh, fw], features.Device);
    }
}
