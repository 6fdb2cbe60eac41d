// Every knob of a training run, as one record: bound from the `slak train` options, saved as options.json in the
// run folder and in the checkpoint (so --resume continues with exactly the same settings), loadable from JSON.
// Defaults are the README's default run: the slak_nano preset on Fashion-MNIST, 20 epochs, sized to finish within
// 15 minutes on a 2-core CPU (bench/results/runs/readme-default-2026-12-04/).
using System.Text.Json;
using System.Text.Json.Serialization;
using Slak.Sparse;

namespace Slak.Train;

/// <summary>Settings of a training run.</summary>
public sealed record TrainOptions
{
    /// <summary>Model preset name (resolved by the caller that builds the model).</summary>
    public string Preset { get; init; } = Models.ModelPresets.DefaultSmall;

    /// <summary>Epochs. The default is the README's run (measured at 9 min 22 s on 2 CPU cores:
    /// bench/results/runs/readme-default-2026-12-04/).</summary>
    public int Epochs { get; init; } = 20;

    /// <summary>Images per micro-batch.</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>Peak learning rate (after warmup).</summary>
    public double Lr { get; init; } = 4e-3;

    /// <summary>Learning rate at the last step.</summary>
    public double MinLr { get; init; } = 1e-6;

    /// <summary>Linear warmup length in epochs (may be fractional).</summary>
    public double WarmupEpochs { get; init; } = 0.5;

    /// <summary>Warmup length in optimizer steps, replacing <see cref="WarmupEpochs"/> when set (the reference's
    /// warmup_steps).</summary>
    public int? WarmupSteps { get; init; }

    /// <summary>Shuffle the training images every epoch (false: batches in file order).</summary>
    public bool Shuffle { get; init; } = true;

    /// <summary>Normalise images with the Fashion-MNIST mean and std (false: used as they are, as an .npz's).</summary>
    public bool Normalize { get; init; } = true;

    /// <summary>The model's config.json when the run trains one (slak train --model-config) instead of
    /// <see cref="Preset"/> (null: the preset).</summary>
    public string? ModelConfig { get; init; }

    /// <summary>AdamW weight decay (2-D/4-D weights only).</summary>
    public double WeightDecay { get; init; } = 0.05;

    /// <summary>Sparse training on/off.</summary>
    public bool Sparse { get; init; } = true;

    /// <summary>Global density of the masked weights.</summary>
    public double Density { get; init; } = 0.6;

    /// <summary>Initial layer densities.</summary>
    public SparseInit SparseInit { get; init; } = SparseInit.Snip;

    /// <summary>Initial prune rate.</summary>
    public double PruneRate { get; init; } = 0.3;

    /// <summary>Optimizer steps between prune/regrow rounds.</summary>
    public int UpdateFrequency { get; init; } = 100;

    /// <summary>Regrowth rule.</summary>
    public SparseGrowth Growth { get; init; } = SparseGrowth.Random;

    /// <summary>Sparse semantics.</summary>
    public SparseSemantics SparseSemantics { get; init; } = SparseSemantics.Ours;

    /// <summary>Stochastic depth rate (linear over blocks; used by the model builder). 0.1 as the reference's
    /// SLaK-T; the nano runs were measured with it (bench/results/training.md).</summary>
    public double DropPath { get; init; } = 0.1;

    /// <summary>Label smoothing.</summary>
    public double Smoothing { get; init; } = 0.1;

    /// <summary>Mixup alpha (0: off).</summary>
    public double Mixup { get; init; }

    /// <summary>CutMix alpha (0: off).</summary>
    public double Cutmix { get; init; }

    /// <summary>Probability of mixing a batch.</summary>
    public double MixupProb { get; init; } = 1.0;

    /// <summary>Probability of CutMix rather than mixup when both are on.</summary>
    public double MixupSwitchProb { get; init; } = 0.5;

    /// <summary>Random-crop padding in pixels (0: off).</summary>
    public int CropPadding { get; init; } = 2;

    /// <summary>Random horizontal flip.</summary>
    public bool HorizontalFlip { get; init; } = true;

    /// <summary>Weight EMA decay (0: off).</summary>
    public double Ema { get; init; }

    /// <summary>Clip gradients to this global norm (0: off).</summary>
    public double ClipGrad { get; init; }

    /// <summary>Micro-batches per optimizer step.</summary>
    public int AccumSteps { get; init; } = 1;

    /// <summary>Seed of every random choice of the run.</summary>
    public ulong Seed { get; init; }

    /// <summary>Device: auto, cpu, cuda, cuda:N, cuda-emu.</summary>
    public string Device { get; init; } = "auto";

    /// <summary>Arithmetic precision (docs/mixed-precision.md); null: the device's default
    /// (<see cref="PrecisionNames.DefaultFor"/>), resolved and recorded when the command starts the run. Weights,
    /// optimizer state and checkpoints are float32 under every precision.</summary>
    public Precision? Precision { get; init; }

    /// <summary>Use only the first N training images (0: all).</summary>
    public int Limit { get; init; }

    /// <summary>Fraction of the training set held out, stratified by class, for validation (model selection) when the
    /// data has no validation split of its own; the hold-out uses a fixed seed, not <see cref="Seed"/>, and comes
    /// before <see cref="Limit"/>. 0: no hold-out and no evaluation (trajectory mode on an .npz).</summary>
    public double ValSplit { get; init; } = 0.1;

    /// <summary>Evaluate the test set after every epoch (reported only, never used to select); otherwise only after
    /// the last epoch.</summary>
    public bool EvalTestEveryEpoch { get; init; }

    /// <summary>Input side for image folders (0: the preset's, at most 224); Fashion-MNIST keeps its own
    /// sizing.</summary>
    public int InputSize { get; init; }

    /// <summary>Image folders: the short side is resized to floor(input size / crop_pct) before the centre
    /// crop.</summary>
    public double CropPct { get; init; } = 0.875;

    /// <summary>Image folders' training crop: "rrc" (the reference's RandomResizedCrop, scale 0.08-1) or "pad" (the
    /// evaluation view, then a random crop with <see cref="CropPadding"/> zero padding, as Fashion-MNIST's IDX path
    /// trains); null: "rrc" for image folders, "pad" for Fashion-MNIST (the only crop its IDX path has).</summary>
    public string? TrainCrop { get; init; }

    /// <summary>Image folders: timm RandAugment string (e.g. rand-m9-mstd0.5-inc1) or "none"; null: the data's
    /// default (the reference's for image folders; Fashion-MNIST has none).</summary>
    public string? Aa { get; init; }

    /// <summary>Random-erasing probability; null: the data's default (0.25 for image folders, 0 for
    /// Fashion-MNIST).</summary>
    public double? Reprob { get; init; }

    /// <summary>Data-loader worker threads (decoding and augmentation; results do not depend on it).</summary>
    public int Workers { get; init; } = 2;

    /// <summary>Per-channel normalisation of the images (Fashion-MNIST's, or ImageNet's for image folders).</summary>
    public Data.DataNormalization Normalization { get; init; } = Data.DataNormalization.FashionMnist;

    /// <summary>Stop the run when more than this fraction of the training images cannot be read or decoded in an
    /// epoch (fewer are skipped, counted and listed at the end of the epoch).</summary>
    public double MaxBadImageFraction { get; init; } = 0.01;

    /// <summary>Log a plain progress line every this many optimizer steps (0: never).</summary>
    public int LogEvery { get; init; } = 50;

    /// <summary>Data-parallel ranks (mpirun -np N); <see cref="BatchSize"/> is per rank, so the global batch is
    /// BatchSize x Ranks. A resume on another rank count keeps the global batch (ResumeOptions).</summary>
    public int Ranks { get; init; } = 1;

    /// <summary>Data parallel: BatchNorm statistics over the global batch (as the reference's SyncBatchNorm); false:
    /// each rank's own batch.</summary>
    public bool SyncBn { get; init; } = true;

    /// <summary>Throws naming the first bad value.</summary>
    public void Validate()
    {
        static void Range(bool ok, string name, object value, string rule)
        {
            if (!ok) throw new ArgumentOutOfRangeException(name, value, $"{name} {rule}");
        }
        foreach (var (name, v) in new[] { (nameof(Lr), Lr), (nameof(MinLr), MinLr), (nameof(WarmupEpochs), WarmupEpochs),
                     (nameof(WeightDecay), WeightDecay), (nameof(Density), Density), (nameof(PruneRate), PruneRate),
                     (nameof(DropPath), DropPath), (nameof(Smoothing), Smoothing), (nameof(Mixup), Mixup), (nameof(Cutmix), Cutmix),
                     (nameof(MixupProb), MixupProb), (nameof(MixupSwitchProb), MixupSwitchProb), (nameof(Ema), Ema), (nameof(ClipGrad), ClipGrad) })
            Range(double.IsFinite(v), name, v, "must be a finite number");
        Range(Epochs >= 1, nameof(Epochs), Epochs, "must be >= 1");
        Range(BatchSize >= 1, nameof(BatchSize), BatchSize, "must be >= 1");
        Range(Lr > 0 && double.IsFinite(Lr), nameof(Lr), Lr, "must be > 0");
        Range(MinLr >= 0 && MinLr <= Lr, nameof(MinLr), MinLr, $"must be in [0, lr={Lr}]");
        Range(WarmupEpochs >= 0 && WarmupEpochs <= Epochs, nameof(WarmupEpochs), WarmupEpochs, $"must be in [0, epochs={Epochs}]");
        Range(WarmupSteps is null or >= 0, nameof(WarmupSteps), WarmupSteps ?? 0, "must be >= 0");
        Range(WeightDecay >= 0, nameof(WeightDecay), WeightDecay, "must be >= 0");
        Range(Density is > 0 and <= 1, nameof(Density), Density, "must be in (0, 1]");
        Range(PruneRate is >= 0 and <= 1, nameof(PruneRate), PruneRate, "must be in [0, 1]");
        Range(UpdateFrequency >= 0, nameof(UpdateFrequency), UpdateFrequency, "must be >= 0");
        Range(DropPath is >= 0 and < 1, nameof(DropPath), DropPath, "must be in [0, 1)");
        Range(Smoothing is >= 0 and < 1, nameof(Smoothing), Smoothing, "must be in [0, 1)");
        Range(Mixup >= 0, nameof(Mixup), Mixup, "must be >= 0");
        Range(Cutmix >= 0, nameof(Cutmix), Cutmix, "must be >= 0");
        Range(MixupProb is >= 0 and <= 1, nameof(MixupProb), MixupProb, "must be in [0, 1]");
        Range(MixupSwitchProb is >= 0 and <= 1, nameof(MixupSwitchProb), MixupSwitchProb, "must be in [0, 1]");
        Range(CropPadding >= 0, nameof(CropPadding), CropPadding, "must be >= 0");
        Range(Ema is >= 0 and < 1, nameof(Ema), Ema, "must be in [0, 1)");
        Range(ClipGrad >= 0, nameof(ClipGrad), ClipGrad, "must be >= 0");
        Range(AccumSteps >= 1, nameof(AccumSteps), AccumSteps, "must be >= 1");
        Range(Limit >= 0, nameof(Limit), Limit, "must be >= 0");
        Range(Reprob is null or (>= 0 and <= 1), nameof(Reprob), Reprob ?? 0, "must be in [0, 1]");
        if (Aa is not null) Data.RandAugment.Parse(Aa);
        if (TrainCrop is not null and not ("rrc" or "pad"))
            throw new ArgumentOutOfRangeException(nameof(TrainCrop), TrainCrop, "the training crop must be rrc or pad");
        Range(Workers >= 1, nameof(Workers), Workers, "must be >= 1");
        Range(InputSize >= 0, nameof(InputSize), InputSize, "must be >= 0");
        Range(CropPct is > 0 and <= 1, nameof(CropPct), CropPct, "must be in (0, 1]");
        Range(MaxBadImageFraction is >= 0 and <= 1, nameof(MaxBadImageFraction), MaxBadImageFraction, "must be in [0, 1]");
        Range(ValSplit is >= 0 and < 1, nameof(ValSplit), ValSplit, "must be in [0, 1) (0: no validation hold-out, no evaluation)");
        Range(LogEvery >= 0, nameof(LogEvery), LogEvery, "must be >= 0");
        Range(Ranks >= 1, nameof(Ranks), Ranks, "must be >= 1");
    }

    /// <summary>JSON settings shared by options files: snake_case names, enums as snake_case strings.</summary>
    public static JsonSerializerOptions JsonOptions { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>The options as JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Options from JSON (missing keys keep their defaults); validates them.</summary>
    public static TrainOptions FromJson(string json, string source = "options JSON")
    {
        ArgumentNullException.ThrowIfNull(json);
        TrainOptions? o;
        try
        {
            o = JsonSerializer.Deserialize<TrainOptions>(json, JsonOptions);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: {e.Message}", e);
        }
        if (o is null) throw new InvalidDataException($"{source}: expected a JSON object, got null");
        o.Validate();
        return o;
    }

    /// <summary>Options from a JSON file.</summary>
    public static TrainOptions Load(string path) => FromJson(File.ReadAllText(path), path);
}
