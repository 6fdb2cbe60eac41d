// The SLaK classifier (reference SLaK, models/SLaK.py L169-235; slak-facts §1.1-1.6): downsample_layers (stem
// conv 4x4/4 + channels_first LN; then LN + conv 2x2/2, three times), stages (Sequentials of SlakBlock), global
// average pool, norm (LayerNorm on the pooled vector, eps 1e-6) and head (Linear). Children are registered in the
// reference order, so StateDict() lists the reference keys in the reference order with the reference shapes.
using Slak.NN;

namespace Slak.Models;

/// <summary>SLaK / ConvNeXt / RepLKNet-style classifier built from a <see cref="ModelConfig"/>.</summary>
public sealed class SlakModel : Module
{
    private readonly bool _shapeOnly;
    private SlakRandom? _dropPathRandom;

    /// <summary>Builds the model. With <see cref="InitMode.Random"/> the weights follow the reference
    /// initialization drawn from the init's generator, and the drop-path generator is seeded from it too.</summary>
    public SlakModel(ModelConfig config, ModuleInit init)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(init);
        Config = config.Validate();
        _shapeOnly = init.Mode == InitMode.ShapeOnly;
        int[] dims = config.StageWidths();
        Widths = dims;

        var (downsample, stages) = BuildTrunk(config, dims, init);
        DownsampleLayers = RegisterModule("downsample_layers", downsample);
        Stages = RegisterModule("stages", stages);

        Norm = RegisterModule("norm", new LayerNorm(dims[3], init, 1e-6f, LayerNormFormat.ChannelsLast));
        Head = RegisterModule("head", new Linear(dims[3], config.NumClasses, init));
        if (init.Mode == InitMode.Random && config.HeadInitScale != 1.0)
        {
            float s = (float)config.HeadInitScale;
            foreach (var t in new[] { Head.Weight, Head.Bias! })
            {
                var data = t.ToArray();
                for (int k = 0; k < data.Length; k++) data[k] *= s;
                t.Backend.CopyFromHost(data, t);
            }
        }
        if (init.Mode == InitMode.Random) DropPathRandom = new SlakRandom(init.Random!.NextUInt64());
    }

    /// <summary>The stem, downsampling layers and stages of <paramref name="config"/> (the trunk SlakModel and
    /// SlakBackbone share), built in the reference order so the same generator gives the same weights in
    /// both.</summary>
    internal static (ModuleList Downsample, ModuleList Stages) BuildTrunk(ModelConfig config, int[] dims, ModuleInit init)
    {
        var downsample = new ModuleList();
        downsample.Append(new Sequential(
            new Conv2d(config.InChans, dims[0], 4, init, stride: 4),
            new LayerNorm(dims[0], init, 1e-6f, LayerNormFormat.ChannelsFirst)));
        for (int i = 0; i < 3; i++)
        {
            downsample.Append(new Sequential(
                new LayerNorm(dims[i], init, 1e-6f, LayerNormFormat.ChannelsFirst),
                new Conv2d(dims[i], dims[i + 1], 2, init, stride: 2)));
        }

        var stages = new ModuleList();
        double[] rates = DropPathRates(config.DropPathRate, config.TotalBlocks);
        int cur = 0;
        for (int i = 0; i < 4; i++)
        {
            var blocks = new List<Module>();
            for (int j = 0; j < config.Depths[i]; j++)
            {
                blocks.Add(new SlakBlock(dims[i], (float)rates[cur + j], (float)config.LayerScaleInitValue,
                                         config.KernelSize[i], config.SmallKernel, config.Decom, config.Bn, init));
            }
            stages.Append(new Sequential(blocks));
            cur += config.Depths[i];
        }
        return (downsample, stages);
    }

    /// <summary>The configuration the model was built from.</summary>
    public ModelConfig Config { get; }

    /// <summary>Stage widths after the width factor.</summary>
    public IReadOnlyList<int> Widths { get; }

    /// <summary>Stem (index 0) and the three downsampling layers.</summary>
    public ModuleList DownsampleLayers { get; }

    /// <summary>The four stages (Sequentials of <see cref="SlakBlock"/>).</summary>
    public ModuleList Stages { get; }

    /// <summary>Final LayerNorm on the pooled features.</summary>
    public LayerNorm Norm { get; }

    /// <summary>Classifier.</summary>
    public Linear Head { get; }

    /// <summary>All blocks, stage by stage.</summary>
    public IEnumerable<SlakBlock> Blocks => Stages.Items.SelectMany(s => ((ModuleList)s).Items).Cast<SlakBlock>();

    /// <summary>Generator of every block's DropPath (checkpoint its state for exact resume). Setting it shares the
    /// one generator among all blocks.</summary>
    public SlakRandom? DropPathRandom
    {
        get => _dropPathRandom;
        set
        {
            _dropPathRandom = value;
            foreach (var block in Blocks) block.DropPath.Random = value;
        }
    }

    /// <summary>linspace(0, rate, n) as the reference computes it (torch.linspace, then .item()).</summary>
    public static double[] DropPathRates(double rate, int blocks)
    {
        var r = new double[blocks];
        for (int i = 0; i < blocks; i++) r[i] = blocks == 1 ? 0 : rate * i / (blocks - 1);
        return r;
    }

    /// <summary>The last stage's feature map (N, C4, h, w): no pooling, no final norm (what ERF analysis needs;
    /// the reference's forward_features pools and normalizes, see slak-facts §4.7).</summary>
    public Tensor ForwardFeatures(Tensor input)
    {
        CheckInput(input);
        var x = input;
        for (int i = 0; i < 4; i++)
        {
            x = DownsampleLayers[i].Forward(x);
            x = Stages[i].Forward(x);
        }
        return x;
    }

    /// <summary>Logits (N, num_classes) for an (N, in_chans, H, W) batch (H, W >= 32).</summary>
    public override Tensor Forward(Tensor input)
    {
        var features = ForwardFeatures(input);
        var pooled = F.GlobalAvgPool(features);
        return Head.Forward(Norm.Forward(pooled));
    }

    private void CheckInput(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank != 4 || input.Size(1) != Config.InChans)
            throw new ArgumentException(
                $"input must be (N, {Config.InChans}, H, W), got {Shapes.Format(input.Shape)}", nameof(input));
        Config.StageSizes(input.Size(2), input.Size(3));
        if (_shapeOnly)
            throw new InvalidOperationException(
                "this model was built shape-only (ModuleInit.ShapeOnly) and holds no weights to compute with");
    }
}
