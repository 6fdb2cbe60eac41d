// Parameter and MAC accounting of a SlakModel at an input size, dense and at per-weight densities, with a plain-text
// table (`slak summary`). Counted like slak-facts §1.7: MACs of convolutions (stem, downsampling, every depthwise
// branch, kh*kw taps per output) and linear layers (pwconv1/2, head); norms, GELU, adds and pooling are not counted.
// Parameters are trainable tensors (BN running statistics are buffers and are excluded). A sparse weight scales its
// layer's parameters and MACs by its density (the theoretical sparse cost, as the reference's FLOPs_counter.py).
// Works on shape-only models, so the paper presets cost nothing to summarize.
using System.Globalization;
using System.Text;
using Slak.NN;

namespace Slak.Models;

/// <summary>Per-layer and per-stage cost of a model.</summary>
public sealed class ModelSummary
{
    private ModelSummary(ModelConfig config, int height, int width, IReadOnlyList<LayerCost> layers,
                         IReadOnlyList<(string Part, string Shape)> outputs)
    {
        Config = config;
        Height = height;
        Width = width;
        Layers = layers;
        Outputs = outputs;
    }

    /// <summary>The model's configuration.</summary>
    public ModelConfig Config { get; }

    /// <summary>Input height.</summary>
    public int Height { get; }

    /// <summary>Input width.</summary>
    public int Width { get; }

    /// <summary>Every layer, in model order.</summary>
    public IReadOnlyList<LayerCost> Layers { get; }

    /// <summary>Output shape (per image) of each summary row, in order.</summary>
    public IReadOnlyList<(string Part, string Shape)> Outputs { get; }

    /// <summary>Trainable parameters, dense.</summary>
    public long Params => Layers.Sum(l => l.WeightElements + l.OtherParams);

    /// <summary>MACs per image, dense.</summary>
    public long Macs => Layers.Sum(l => l.Macs);

    /// <summary>Parameters when each weight keeps the fraction <paramref name="density"/>(key) of its
    /// elements.</summary>
    public double ParamsAt(Func<string, double> density) =>
        Layers.Sum(l => l.OtherParams + l.WeightElements * D(density, l));

    /// <summary>MACs per image at the given per-weight densities.</summary>
    public double MacsAt(Func<string, double> density) => Layers.Sum(l => l.Macs * D(density, l));

    private static double D(Func<string, double> density, LayerCost l) =>
        l.WeightKey is null ? 1.0 : density(l.WeightKey);

    /// <summary>A density function that gives <paramref name="density"/> to every 2-D/4-D weight (what the sparse
    /// trainer masks: stem, downsampling, depthwise branches, MLPs, head).</summary>
    public static Func<string, double> Uniform(double density)
    {
        if (!(density >= 0 && density <= 1))
            throw new ArgumentOutOfRangeException(nameof(density), density, "density must be in [0, 1]");
        return _ => density;
    }

    /// <summary>A density function from masks (or sparse weights): fraction of nonzero elements per key; keys
    /// without a mask are dense.</summary>
    public static Func<string, double> FromMasks(IReadOnlyDictionary<string, float[]> masks)
    {
        ArgumentNullException.ThrowIfNull(masks);
        var d = masks.ToDictionary(
            kv => kv.Key, kv => kv.Value.Length == 0 ? 1.0 : kv.Value.Count(v => v != 0f) / (double)kv.Value.Length);
        return key => d.TryGetValue(key, out double v) ? v : 1.0;
    }

    /// <summary>Summarizes a config (builds a shape-only model: no weights are allocated).</summary>
    public static ModelSummary Of(ModelConfig config, int height, int width) =>
        Of(new SlakModel(config, ModuleInit.ShapeOnly), height, width);

    /// <summary>Summarizes <paramref name="model"/> for an input of <paramref name="height"/> x
    /// <paramref name="width"/>.</summary>
    public static ModelSummary Of(SlakModel model, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(model);
        var sizes = model.Config.StageSizes(height, width);
        var layers = new List<LayerCost>();
        var outputs = new List<(string, string)>();
        int[] dims = model.Config.StageWidths();
        for (int i = 0; i < 4; i++)
        {
            var (h, w) = sizes[i];
            string part = i == 0 ? "stem" : $"downsample {i}";
            var ds = (ModuleList)model.DownsampleLayers[i];
            for (int j = 0; j < ds.Count; j++)
            {
                string path = $"downsample_layers.{i}.{j}";
                if (ds[j] is Conv2d conv)
                    layers.Add(new(part, path, path + ".weight", conv.Weight.Numel, conv.Bias?.Numel ?? 0,
                                   (long)h * w * conv.Weight.Numel));
                else
                    layers.Add(new(part, path, null, 0, ds[j].ParameterCount(), 0));
            }
            outputs.Add((part, $"{dims[i]}x{h}x{w}"));

            string stage = $"stage {i + 1}";
            var blocks = (ModuleList)model.Stages[i];
            long pixels = (long)h * w;
            for (int b = 0; b < blocks.Count; b++)
            {
                var block = (SlakBlock)blocks[b];
                string prefix = $"stages.{i}.{b}";
                layers.Add(new(stage, prefix, null, 0, (block.Gamma?.Numel ?? 0) + block.Norm.ParameterCount(), 0));
                foreach (var (name, m) in block.LargeKernel.NamedModules($"{prefix}.large_kernel."))
                {
                    if (m is DepthwiseConv2d dw)
                        layers.Add(new(stage, name, name + ".weight", dw.Weight.Numel, 0, pixels * dw.Weight.Numel));
                    else if (m is BatchNorm2d bn)
                        layers.Add(new(stage, name, null, 0, bn.ParameterCount(), 0));
                }
                foreach (var (name, lin) in new[] { ("pwconv1", block.PwConv1), ("pwconv2", block.PwConv2) })
                    layers.Add(new(stage, $"{prefix}.{name}", $"{prefix}.{name}.weight", lin.Weight.Numel,
                                   lin.Bias?.Numel ?? 0,
                                   pixels * lin.Weight.Numel));
            }
            outputs.Add((stage, $"{dims[i]}x{h}x{w}"));
        }
        layers.Add(new("head", "norm", null, 0, model.Norm.ParameterCount(), 0));
        layers.Add(new("head", "head", "head.weight", model.Head.Weight.Numel, model.Head.Bias?.Numel ?? 0,
                       model.Head.Weight.Numel));
        outputs.Add(("head", $"{model.Config.NumClasses}"));
        long counted = layers.Sum(l => l.WeightElements + l.OtherParams);
        if (counted != model.ParameterCount())
            throw new InvalidOperationException(
                $"summary counted {counted} parameters but the model has {model.ParameterCount()} (a layer kind is " +
                $"not accounted for)");
        return new ModelSummary(model.Config, height, width, layers, outputs);
    }

    /// <summary>The table: one row per stem/downsample/stage/head with output shape, parameters and MACs, dense and
    /// at <paramref name="density"/> (omitted when null), plus totals.</summary>
    public string Render(Func<string, double>? density = null, string? densityLabel = null)
    {
        var header = new List<string> { "part", "output", "params", "MACs" };
        if (density is not null)
        {
            header.Add($"params@{densityLabel ?? "density"}");
            header.Add($"MACs@{densityLabel ?? "density"}");
        }
        var rows = new List<string[]>();
        foreach (var (part, shape) in Outputs)
        {
            var ls = Layers.Where(l => l.Part == part).ToList();
            var row = new List<string>
            {
                part, shape, Count(ls.Sum(l => l.WeightElements + l.OtherParams)), Count(ls.Sum(l => l.Macs)),
            };
            if (density is not null)
            {
                row.Add(Count(ls.Sum(l => l.OtherParams + l.WeightElements * D(density, l))));
                row.Add(Count(ls.Sum(l => l.Macs * D(density, l))));
            }
            rows.Add([.. row]);
        }
        var total = new List<string> { "total", $"in {Config.InChans}x{Height}x{Width}", Count(Params), Count(Macs) };
        if (density is not null) { total.Add(Count(ParamsAt(density))); total.Add(Count(MacsAt(density))); }
        rows.Add([.. total]);

        var widths = header.Select((h, c) => Math.Max(h.Length, rows.Max(r => r[c].Length))).ToArray();
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"model: {Config}");
        sb.AppendLine(Line(header, widths));
        sb.AppendLine(string.Join("  ", widths.Select(w => new string('-', w))));
        for (int r = 0; r < rows.Count; r++)
        {
            if (r == rows.Count - 1) sb.AppendLine(string.Join("  ", widths.Select(w => new string('-', w))));
            sb.AppendLine(Line(rows[r], widths));
        }
        return sb.ToString();
    }

    private static string Line(IReadOnlyList<string> cells, int[] widths) =>
        string.Join("  ", cells.Select((c, i) => i < 2 ? c.PadRight(widths[i]) : c.PadLeft(widths[i]))).TrimEnd();

    /// <summary>Human count: 50.70 M, 8.70 G, 12.3 K.</summary>
    public static string Count(double v) => v switch
    {
        >= 1e9 => (v / 1e9).ToString("0.00", CultureInfo.InvariantCulture) + " G",
        >= 1e6 => (v / 1e6).ToString("0.00", CultureInfo.InvariantCulture) + " M",
        >= 1e3 => (v / 1e3).ToString("0.0", CultureInfo.InvariantCulture) + " K",
        _ => v.ToString("0", CultureInfo.InvariantCulture),
    };
}
