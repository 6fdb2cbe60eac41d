// Gradient clipping by global L2 norm (torch.nn.utils.clip_grad_norm_): all gradients are scaled by
// maxNorm / (norm + 1e-6) when the norm exceeds maxNorm.
namespace Slak.Optim;

/// <summary>Clipping of gradients by their global norm.</summary>
public static class GradClip
{
    /// <summary>Clips the gradients of <paramref name="parameters"/> in place and returns the norm before
    /// clipping.</summary>
    public static double ClipByGlobalNorm(IEnumerable<Tensor> parameters, double maxNorm)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!(maxNorm > 0)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "max norm must be > 0");
        var grads = parameters.Select(p => p.Grad).OfType<Tensor>().ToList();
        double total = 0;
        foreach (var g in grads)
        {
            using var sq = Tensor.Empty([], g.Device);
            g.Backend.SumSquares(g, sq);
            total += sq.Item();
        }
        double norm = Math.Sqrt(total);
        if (norm > maxNorm)
        {
            float scale = (float)(maxNorm / (norm + 1e-6));
            foreach (var g in grads) g.Backend.Scale(g, scale, g);
        }
        return norm;
    }
}
