// The decomposed large kernel's training tail as one operator: y = sum_b BatchNorm2d_b(x_b) in training mode
// (IBackend.BatchNormSum.cs), what ReparamLargeKernelConv computed as one F.BatchNorm2d per branch and F.Add between
// them. Same semantics per branch as F.BatchNorm2d in training (batch statistics, running statistics updated in place
// with momentum and unbiased variance); the gradient of every x_b, weight_b and bias_b from the one incoming gradient.
using Slak.Autograd;

namespace Slak;

public static partial class F
{
    /// <summary>Training-mode sum of BatchNorms: y = sum_b BatchNorm2d(xs[b], weights[b], biases[b],
    /// runningMeans[b], runningVars[b], training: true, momenta[b], eps[b]), summed in branch order. Every xs[b] is
    /// (N, C, H, W) of one shape.</summary>
    internal static Tensor BatchNorm2dSum(Tensor[] xs, Tensor[] weights, Tensor[] biases, Tensor[] runningMeans,
                                          Tensor[] runningVars, float[] momenta, float[] eps)
    {
        const string op = nameof(BatchNorm2dSum);
        ArgumentNullException.ThrowIfNull(xs);
        int branches = xs.Length;
        if (branches < 1) throw new ArgumentException($"{op}: needs at least one branch", nameof(xs));
        foreach (var (arr, name) in new[] { (weights, nameof(weights)), (biases, nameof(biases)),
                     (runningMeans, nameof(runningMeans)), (runningVars, nameof(runningVars)) })
            if (arr is null || arr.Length != branches)
                throw new ArgumentException($"{op}: {name} needs one tensor per branch ({branches})", name);
        if (momenta is null || momenta.Length != branches || eps is null || eps.Length != branches)
            throw new ArgumentException($"{op}: momenta and eps need one value per branch ({branches})");
        var x0 = xs[0];
        Check.Rank(x0, 4, op, "xs[0]", "(N, C, H, W)");
        int c = x0.Size(1);
        for (int b = 0; b < branches; b++)
        {
            Check.SameShape(op, x0, "xs[0]", xs[b], $"xs[{b}]");
            Check.SameDevice(op, x0, "xs[0]", xs[b], $"xs[{b}]");
            Check.Vector(op, weights[b], $"weights[{b}]", c, x0, "xs[0]");
            Check.Vector(op, biases[b], $"biases[{b}]", c, x0, "xs[0]");
            Check.Vector(op, runningMeans[b], $"runningMeans[{b}]", c, x0, "xs[0]");
            Check.Vector(op, runningVars[b], $"runningVars[{b}]", c, x0, "xs[0]");
            Check.Positive(eps[b], op, $"eps[{b}]");
            if (!(momenta[b] >= 0 && momenta[b] <= 1))
                throw new ArgumentOutOfRangeException(nameof(momenta), momenta[b], $"{op}: momentum must be in [0, 1]");
        }
        if ((long)x0.Size(0) * x0.Size(2) * x0.Size(3) < 2)
            throw new ArgumentException($"{op}: training needs more than one value per channel, got x {Shapes.Format(x0.Shape)}", nameof(xs));
        var y = Like(x0);
        var saveMeans = new Tensor[branches];
        var saveInvStds = new Tensor[branches];
        for (int b = 0; b < branches; b++)
        {
            saveMeans[b] = Tensor.Empty([c], x0.Device);
            saveInvStds[b] = Tensor.Empty([c], x0.Device);
        }
        var be = x0.Backend;
        be.BatchNormTrainSum(xs, weights, biases, runningMeans, runningVars, momenta, eps, y, saveMeans, saveInvStds);
        return AutogradEngine.Record(y, op, [.. xs, .. weights, .. biases], g =>
        {
            var dxs = xs.Select(Like).ToArray();
            var dws = weights.Select(Like).ToArray();
            var dbs = biases.Select(Like).ToArray();
            be.BatchNormBackwardSum(xs, weights, saveMeans, saveInvStds, g, dxs, dws, dbs);
            return [.. dxs, .. dws, .. dbs];
        });
    }
}
