// SLaK as a backbone for detection and segmentation (the reference's segmentation/detection SLaK, slak-facts §4.5
// and §7.3): the classifier's downsample_layers and stages, without the global pool, final norm and head, plus one
// channels-first LayerNorm (eps 1e-6) per stage output, registered as norm0..norm3 like the reference
// (`backbone.norm0..norm3.{weight,bias}` in its checkpoints). Forward returns the four normalised stage outputs,
// channels-first: (N, C_i, H / 4 / 2^i, W / 4 / 2^i). A classification checkpoint loads into it with its head and
// final norm ignored; the stage norms, which it does not have, stay freshly initialised (weight 1, bias 0).
// SlakModel.ForwardFeatures keeps its meaning (the last stage's map, unpooled and unnormalised).
using Slak.NN;

namespace Slak.Models;

/// <summary>The four stage outputs of a SLaK / ConvNeXt / RepLKNet-style network, each with its own norm.</summary>
public sealed class SlakBackbone : Module
{
    private SlakRandom? _dropPathRandom;

    /// <summary>Builds the backbone of <paramref name="config"/> (num_classes, head_init_scale unused). The
    /// downsample_layers and stages are built in the same order, with the same draws from the init's generator, as
    /// <see cref="SlakModel"/>'s, so the same seed gives the same weights there.</summary>
    public SlakBackbone(ModelConfig config, ModuleInit init)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(init);
        Config = config.Validate();
        int[] dims = config.StageWidths();
        Widths = dims;

        var (downsample, stages) = SlakModel.BuildTrunk(config, dims, init);
        DownsampleLayers = RegisterModule("downsample_layers", downsample);
        Stages = RegisterModule("stages", stages);

        var norms = new LayerNorm[4];
        for (int i = 0; i < 4; i++)
            norms[i] = RegisterModule($"norm{i}", new LayerNorm(dims[i], init, 1e-6f, LayerNormFormat.ChannelsFirst));
        Norms = norms;
        if (init.Mode == InitMode.Random) DropPathRandom = new SlakRandom(init.Random!.NextUInt64());
    }

    /// <summary>The configuration the backbone was built from.</summary>
    public ModelConfig Config { get; }

    /// <summary>Stage widths after the width factor (the channels of the four outputs).</summary>
    public IReadOnlyList<int> Widths { get; }

    /// <summary>Stem (index 0) and the three downsampling layers.</summary>
    public ModuleList DownsampleLayers { get; }

    /// <summary>The four stages (Sequentials of <see cref="SlakBlock"/>).</summary>
    public ModuleList Stages { get; }

    /// <summary>norm0..norm3: channels-first LayerNorms on the stage outputs.</summary>
    public IReadOnlyList<LayerNorm> Norms { get; }

    /// <summary>All blocks, stage by stage.</summary>
    public IEnumerable<SlakBlock> Blocks => Stages.Items.SelectMany(s => ((ModuleList)s).Items).Cast<SlakBlock>();

    /// <summary>Generator of every block's DropPath (shared by all blocks).</summary>
    public SlakRandom? DropPathRandom
    {
        get => _dropPathRandom;
        set
        {
            _dropPathRandom = value;
            foreach (var block in Blocks) block.DropPath.Random = value;
        }
    }

    /// <summary>The four stage outputs before their norms (N, C_i, h_i, w_i); the last one is what
    /// <see cref="SlakModel.ForwardFeatures"/> returns.</summary>
    public IReadOnlyList<Tensor> ForwardStages(Tensor input)
    {
        CheckInput(input);
        var outs = new Tensor[4];
        var x = input;
        for (int i = 0; i < 4; i++)
        {
            x = DownsampleLayers[i].Forward(x);
            x = Stages[i].Forward(x);
            outs[i] = x;
        }
        return outs;
    }

    /// <summary>The four normalised stage outputs, channels-first: norm_i(stage_i(...)), (N, C_i, h_i, w_i) with
    /// h_i = H / 4 / 2^i (floor), like the reference backbone's forward with out_indices (0, 1, 2, 3).</summary>
    public IReadOnlyList<Tensor> ForwardFeatures(Tensor input)
    {
        var stages = ForwardStages(input);
        return [.. stages.Select((s, i) => Norms[i].Forward(s))];
    }

    /// <summary>Not a single-tensor module: use <see cref="ForwardFeatures"/>.</summary>
    public override Tensor Forward(Tensor input) =>
        throw new NotSupportedException("SlakBackbone returns four tensors: call ForwardFeatures (or ForwardStages)");

    /// <summary>Loads the downsample_layers and stages of a checkpoint: a classification checkpoint (its head.* and
    /// norm.* are ignored, and norm0..norm3 stay as they are, freshly initialised) or a backbone checkpoint (keys
    /// prefixed "backbone." are accepted, norm0..norm3 are loaded when present). Every other key must match exactly
    /// (missing, unexpected and mis-shaped keys throw, all listed). Returns a one-line note of what was ignored
    /// and what was not loaded.</summary>
    public string LoadCheckpoint(IReadOnlyDictionary<string, StateEntry> source, string sourceName = "checkpoint")
    {
        ArgumentNullException.ThrowIfNull(source);
        var ignored = new List<string>();
        var kept = new Dictionary<string, StateEntry>(StringComparer.Ordinal);
        foreach (var (key, entry) in source)
        {
            string name = StateDictIO.NormalizeKey(key);
            if (name.StartsWith("head.", StringComparison.Ordinal) || name.StartsWith("norm.", StringComparison.Ordinal))
                ignored.Add(key);
            else
                kept[key] = entry;
        }
        var (missing, unexpected) = StateDictIO.Load(this, kept, strict: false, sourceName);
        bool IsStageNorm(string k) => k.Length > 5 && k.StartsWith("norm", StringComparison.Ordinal) && k[4] is >= '0' and <= '3' && k[5] == '.';
        var notNorms = missing.Where(k => !IsStageNorm(k)).ToList();
        if (notNorms.Count > 0 || unexpected.Count > 0)
            throw new StateDictMismatchException(sourceName, notNorms, unexpected, []);
        var fresh = missing.Where(IsStageNorm).Select(k => k[..k.IndexOf('.', StringComparison.Ordinal)])
            .Distinct().ToList();
        string note = $"{sourceName}: loaded downsample_layers and stages";
        if (ignored.Count > 0)
            note += $"; ignored {string.Join(", ", ignored.OrderBy(k => k, StringComparer.Ordinal))} " +
                "(classification head and final norm: a backbone has none)";
        if (fresh.Count > 0) note += $"; {string.Join(", ", fresh)} not in the checkpoint, freshly initialised";
        return note;
    }

    /// <summary>Builds the backbone of <paramref name="config"/> on <paramref name="device"/> and loads
    /// <paramref name="weightsPath"/> (safetensors) with <see cref="LoadCheckpoint"/>; writes the note line to
    /// <paramref name="log"/> (default: standard output). The backbone is in evaluation mode.</summary>
    public static SlakBackbone Load(ModelConfig config, string weightsPath, Device device, TextWriter? log = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!File.Exists(weightsPath))
            throw new FileNotFoundException($"weights file '{weightsPath}' does not exist", weightsPath);
        var backbone = new SlakBackbone(config, ModuleInit.ForLoading(device));
        string note = backbone.LoadCheckpoint(StateDictIO.ReadSafeTensors(weightsPath), weightsPath);
        (log ?? Console.Out).WriteLine(note);
        backbone.Eval();
        return backbone;
    }

    private void CheckInput(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank != 4 || input.Size(1) != Config.InChans)
            throw new ArgumentException(
                $"input must be (N, {Config.InChans}, H, W), got {Shapes.Format(input.Shape)}", nameof(input));
        Config.StageSizes(input.Size(2), input.Size(3));
        if (IsShapeOnly)
            throw new InvalidOperationException(
                "this backbone was built shape-only (ModuleInit.ShapeOnly) and holds no weights to compute with");
    }
}
