// Random SLaK models for the export tests. A freshly initialised model is nearly the identity in every block (layer
// scale 1e-6) and has trivial BatchNorm statistics, which would let a wrong large kernel or a wrong fold pass; so
// every parameter and buffer is redrawn from the seed: layer scales and norm scales in [0.5, 1.5], biases and
// running means in [-0.2, 0.2], running variances in [0.3, 2], depthwise taps scaled up 10x and other weights 2x, and
// optionally a random 40 % of the depthwise taps masked out (masked taps keep non-zero stored weights, so the export
// must apply masks).
using Slak.Autograd;
using Slak.Models;
using Slak.NN;

namespace Slak.Tests.Export;

internal static class ExportTestModels
{
    public static SlakModel Create(ModelConfig config, ulong seed, bool masks = true)
    {
        var model = new SlakModel(config.Validate(), ModuleInit.ForLoading(Device.Cpu));
        var rng = new SlakRandom(seed ^ 0x5EEDUL);
        using (GradMode.NoGrad())
        {
            foreach (var (name, t) in model.StateDict())
            {
                if (name.EndsWith("num_batches_tracked", StringComparison.Ordinal)) continue;
                var data = new float[t.Numel];
                string leaf = name[(name.LastIndexOf('.') + 1)..];
                float bound = t.Rank >= 2 ? MathF.Sqrt(3f * t.Size(0) / t.Numel) : 0f;
                (float Low, float Width) range = leaf switch
                {
                    "gamma" => (0.5f, 1f),
                    "running_var" => (0.3f, 1.7f),
                    "running_mean" or "bias" => (-0.2f, 0.4f),
                    "weight" when t.Rank == 1 => (0.5f, 1f),
                    _ when t.Rank >= 2 => (-bound, 2 * bound),
                    _ => throw new InvalidOperationException($"no test distribution for '{name}'"),
                };
                for (int i = 0; i < data.Length; i++) data[i] = range.Low + range.Width * rng.NextFloat();
                t.Backend.CopyFromHost(data, t);
            }
            if (masks)
            {
                foreach (var (_, m) in model.NamedModules())
                {
                    if (m is not DepthwiseConv2d dw) continue;
                    var mask = new float[dw.Weight.Numel];
                    for (int i = 0; i < mask.Length; i++) mask[i] = rng.NextFloat() < 0.4f ? 0f : 1f;
                    dw.WeightMask = Tensor.FromArray(mask, dw.Weight.ShapeArray);
                }
            }
        }
        model.Eval();
        return model;
    }

    public static float[] RandomInput(int[] shape, ulong seed)
    {
        var rng = new SlakRandom(seed);
        var x = new float[shape.Aggregate(1, (a, b) => a * b)];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextNormal();
        return x;
    }
}
