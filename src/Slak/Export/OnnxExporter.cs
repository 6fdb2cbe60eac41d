// `slak export --onnx`: the evaluation-mode SLaK classifier as an ONNX model (opset 17, IR version 8) that ONNX
// Runtime and other runtimes load. The graph mirrors SlakModel.Forward with inference folding:
//   stem Conv 4x4/4 -> LayerNorm (channels-first: Transpose to NHWC, LayerNormalization over the last axis,
//   Transpose back); per stage i > 0: LayerNorm then Conv 2x2/2; per block: the large kernel as one depthwise Conv
//   (BatchNorms and masks folded, branches merged into the union kernel) or one Conv per branch summed
//   (KeepBranches), Transpose to NHWC, LayerNormalization, MatMul + Add (pwconv1), exact GELU
//   x * 0.5 * (1 + erf(x / sqrt 2)), MatMul + Add (pwconv2), Mul by the layer scale, Transpose back, residual Add;
//   GlobalAveragePool, Flatten, LayerNormalization, Gemm (head).
// Input "input" (N, C, H, W) float32 with N, H and W dynamic; output "logits" (N, classes). Every weight is an
// initializer named after its state_dict key. The protobuf messages come from Export/onnx_ir.proto (Google.Protobuf).
using Google.Protobuf;
using Slak.Export.OnnxIr;
using Slak.IO;
using Slak.Models;
using Slak.NN;
using G = Slak.Export.OnnxGraphBuilder;

namespace Slak.Export;

/// <summary>Writes SLaK models as ONNX.</summary>
public static class OnnxExporter
{
    /// <summary>The graph's input name.</summary>
    public const string InputName = "input";

    /// <summary>The graph's output name.</summary>
    public const string OutputName = "logits";

    /// <summary>IR version 8 is the one that goes with opset 17.</summary>
    private const long IrVersion = 8;

    /// <summary>Serializes <paramref name="model"/> (its current weights, masks applied, BatchNorms on running
    /// statistics) as an ONNX model.</summary>
    public static byte[] ToBytes(SlakModel model, OnnxExportOptions? options = null) =>
        Build(model, options ?? new OnnxExportOptions()).ToByteArray();

    /// <summary>Writes <paramref name="model"/> to <paramref name="path"/> atomically; returns the operator counts
    /// of the graph.</summary>
    public static IReadOnlyDictionary<string, int> Export(SlakModel model, string path, OnnxExportOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var proto = Build(model, options ?? new OnnxExportOptions());
        AtomicFile.Write(path, s => proto.WriteTo(s));
        return CountOps(proto);
    }

    /// <summary>Runs `slak export`: loads <paramref name="configPath"/> and <paramref name="weightsPath"/> strictly
    /// (like `slak infer`) and writes <paramref name="outputPath"/>. Returns the loaded model's config and the
    /// operator counts.</summary>
    public static (ModelConfig Config, IReadOnlyDictionary<string, int> Ops) ExportCheckpoint(
        string configPath, string weightsPath, string outputPath, OnnxExportOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(configPath);
        ArgumentException.ThrowIfNullOrEmpty(weightsPath);
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        options = (options ?? new OnnxExportOptions()).Validate();
        CheckWritable(outputPath);
        var config = ModelConfig.Load(configPath);
        var model = Inference.SlakInference.LoadModel(config, weightsPath, Device.Cpu);
        return (config, Export(model, outputPath, options));
    }

    internal static ModelProto Build(SlakModel model, OnnxExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (model.IsShapeOnly)
            throw new ArgumentException("cannot export a shape-only model (it holds no weights)", nameof(model));
        var config = model.Config;
        var g = new G("slak");
        string x = g.AddInput(InputName, "N", config.InChans, "H", "W");
        for (int i = 0; i < 4; i++)
        {
            var down = (Sequential)model.DownsampleLayers[i];
            string prefix = $"downsample_layers.{i}";
            if (i == 0)
            {
                x = Conv2d(g, $"{prefix}.0", (NN.Conv2d)down[0], x);
                x = LayerNormChannelsFirst(g, $"{prefix}.1", (LayerNorm)down[1], x);
            }
            else
            {
                x = LayerNormChannelsFirst(g, $"{prefix}.0", (LayerNorm)down[0], x);
                x = Conv2d(g, $"{prefix}.1", (NN.Conv2d)down[1], x);
            }
            var stage = (Sequential)model.Stages[i];
            for (int j = 0; j < config.Depths[i]; j++)
                x = Block(g, $"stages.{i}.{j}", (SlakBlock)stage[j], x, options.KeepBranches);
        }
        x = g.Node("GlobalAveragePool", "pool", [x]);
        x = g.Node("Flatten", "pool", [x], null, G.Int("axis", 1));
        x = LayerNormLastAxis(g, "norm", model.Norm, x);
        var head = model.Head;
        string hw = g.AddFloat("head.weight", head.Weight.ToArray(), head.OutFeatures, head.InFeatures);
        string hb = g.AddFloat("head.bias", head.Bias!.ToArray(), head.OutFeatures);
        g.Node("Gemm", "head", [x, hw, hb], OutputName, G.Int("transB", 1));
        g.AddOutput(OutputName, "N", config.NumClasses);

        var proto = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "Slak.Cuda",
            ProducerVersion = typeof(OnnxExporter).Assembly.GetName().Version?.ToString() ?? "0",
            DocString = $"SLaK classifier ({config}); evaluation mode, BatchNorms folded, " +
                (options.KeepBranches ? "large-kernel branches kept" : "large-kernel branches merged"),
            Graph = g.Graph,
        };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = options.Opset });
        return proto;
    }

    internal static IReadOnlyDictionary<string, int> CountOps(ModelProto proto) =>
        proto.Graph.Node.GroupBy(n => n.OpType).ToDictionary(q => q.Key, q => q.Count(), StringComparer.Ordinal);

    private static string Conv2d(G g, string name, NN.Conv2d conv, string x)
    {
        int k = conv.KernelSize, p = conv.Padding;
        string w = g.AddFloat($"{name}.weight", conv.Weight.ToArray(), conv.OutChannels, conv.InChannels, k, k);
        var inputs = new List<string> { x, w };
        if (conv.Bias is not null) inputs.Add(g.AddFloat($"{name}.bias", conv.Bias.ToArray(), conv.OutChannels));
        return g.Node("Conv", name, [.. inputs], null, G.Ints("kernel_shape", k, k),
                      G.Ints("strides", conv.Stride, conv.Stride), G.Ints("pads", p, p, p, p));
    }

    private static string Depthwise(G g, string name, FoldedDepthwise d, string x)
    {
        string w = g.AddFloat($"{name}.weight", d.Weight, d.Channels, 1, d.KernelHeight, d.KernelWidth);
        var inputs = new List<string> { x, w };
        if (d.Bias is not null) inputs.Add(g.AddFloat($"{name}.bias", d.Bias, d.Channels));
        int ph = d.KernelHeight / 2, pw = d.KernelWidth / 2;
        return g.Node("Conv", name, [.. inputs], null, G.Int("group", d.Channels),
                      G.Ints("kernel_shape", d.KernelHeight, d.KernelWidth), G.Ints("pads", ph, pw, ph, pw));
    }

    private static string LayerNormLastAxis(G g, string name, LayerNorm ln, string x)
    {
        string s = g.AddFloat($"{name}.weight", ln.Weight.ToArray(), ln.Channels);
        string b = g.AddFloat($"{name}.bias", ln.Bias.ToArray(), ln.Channels);
        return g.Node("LayerNormalization", name, [x, s, b], null, G.Int("axis", -1), G.Float("epsilon", ln.Eps));
    }

    private static string ToChannelsLast(G g, string name, string x) =>
        g.Node("Transpose", name, [x], null, G.Ints("perm", 0, 2, 3, 1));

    private static string ToChannelsFirst(G g, string name, string x) =>
        g.Node("Transpose", name, [x], null, G.Ints("perm", 0, 3, 1, 2));

    private static string LayerNormChannelsFirst(G g, string name, LayerNorm ln, string x) =>
        ToChannelsFirst(g, name, LayerNormLastAxis(g, name, ln, ToChannelsLast(g, name, x)));

    // A Linear on the last axis: MatMul by the transposed weight (in, out), then Add the bias.
    private static string Linear(G g, string name, Linear linear, string x)
    {
        int inF = linear.InFeatures, outF = linear.OutFeatures;
        var w = linear.Weight.ToArray();
        var wt = new float[w.Length];
        for (int o = 0; o < outF; o++)
            for (int i = 0; i < inF; i++) wt[(long)i * outF + o] = w[(long)o * inF + i];
        x = g.Node("MatMul", name, [x, g.AddFloat($"{name}.weight_t", wt, inF, outF)]);
        if (linear.Bias is null) return x;
        return g.Node("Add", name, [x, g.AddFloat($"{name}.bias", linear.Bias.ToArray(), outF)]);
    }

    // Exact GELU as PyTorch's default: 0.5 * x * (1 + erf(x / sqrt(2))).
    private static string Gelu(G g, string name, string x)
    {
        string invSqrt2 = g.AddScalar("const.inv_sqrt2", (float)(1 / Math.Sqrt(2)));
        string one = g.AddScalar("const.one", 1f);
        string half = g.AddScalar("const.half", 0.5f);
        string e = g.Node("Erf", name, [g.Node("Mul", name, [x, invSqrt2])]);
        return g.Node("Mul", name, [g.Node("Mul", name, [x, g.Node("Add", name, [e, one])]), half]);
    }

    private static string Block(G g, string name, SlakBlock block, string input, bool keepBranches)
    {
        string lkName = $"{name}.large_kernel";
        var lk = block.LargeKernel;
        string x;
        if (keepBranches)
        {
            var names = lk.Branches.Select(b => BranchName(lk, b)).ToArray();
            var folded = LargeKernelFolding.FoldBranches(lk);
            var outs = folded.Select((f, b) => Depthwise(g, $"{lkName}.{names[b]}", f, input)).ToArray();
            x = outs.Length == 1 ? outs[0] : g.Node("Sum", lkName, outs);
        }
        else
        {
            x = Depthwise(g, $"{lkName}.merged", LargeKernelFolding.Merge(lk), input);
        }
        x = ToChannelsLast(g, name, x);
        x = LayerNormLastAxis(g, $"{name}.norm", block.Norm, x);
        x = Linear(g, $"{name}.pwconv1", block.PwConv1, x);
        x = Gelu(g, $"{name}.act", x);
        x = Linear(g, $"{name}.pwconv2", block.PwConv2, x);
        if (block.Gamma is not null)
            x = g.Node("Mul", name, [x, g.AddFloat($"{name}.gamma", block.Gamma.ToArray(), block.Dim)]);
        x = ToChannelsFirst(g, name, x);
        return g.Node("Add", name, [input, x]);
    }

    private static string BranchName(ReparamLargeKernelConv lk, ConvBn b) =>
        ReferenceEquals(b, lk.LoRA1) ? "LoRA1" : ReferenceEquals(b, lk.LoRA2) ? "LoRA2"
        : ReferenceEquals(b, lk.LkbOrigin) ? "lkb_origin" : "small_conv";

    // Fails before any work when the output cannot be written (missing folder, a folder in the way, no permission).
    private static void CheckWritable(string path)
    {
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full))
            throw new IOException($"cannot write ONNX model to '{path}': it is a directory");
        string dir = Path.GetDirectoryName(full) ?? ".";
        if (!Directory.Exists(dir))
            throw new DirectoryNotFoundException($"cannot write ONNX model to '{path}': folder '{dir}' does not exist");
        string probe = Path.Combine(dir, $".slak-export-probe-{Guid.NewGuid():N}");
        try
        {
            using (File.Create(probe, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new IOException($"cannot write ONNX model to '{path}': folder '{dir}' is not writable ({e.Message})", e);
        }
    }
}
