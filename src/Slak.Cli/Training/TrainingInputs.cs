// What `slak train` trains on and with: the model (a preset, or --model-config C.json checked against the data), its
// starting weights (drawn, or --init-weights W.safetensors with optional masks) and the data (Fashion-MNIST from a
// folder, or --data D.npz used as it is: no augmentation, no normalisation, no test split). The trajectory mode of
// the README ("Comparing a training run with PyTorch step by step") is these inputs plus fixed settings.
using Slak.Data;
using Slak.IO;
using Slak.Models;
using Slak.Train;

namespace Slak.Cli.Training;

/// <summary>Model, initial masks and data of a training run.</summary>
/// <param name="Model">The model on its device, with the initial weights loaded when given.</param>
/// <param name="Masks">Masks from the initial weights (null: none given; the trainer draws them when sparse).</param>
/// <param name="Data">Training, validation (null: held out of training by the trainer, or none for an .npz) and test
/// images (null: none).</param>
internal sealed record TrainingInputs(SlakModel Model, IReadOnlyDictionary<string, byte[]>? Masks, TrainingData Data)
{
    /// <summary>The options that follow from the inputs: an .npz's images are used as they are (no crop, flip or
    /// normalisation); masks in the initial weights mean sparse training with them (refused with --no-sparse); a
    /// model config without --sparse/--density trains dense (the presets' default density does not apply).</summary>
    public static TrainOptions AdjustOptions(TrainOptions o, string? data, string? initWeights, bool sparseChosen, bool noSparse)
    {
        ArgumentNullException.ThrowIfNull(o);
        // An .npz is used as it is: no augmentation, no normalisation, no validation hold-out (every image trains).
        if (NpzImages.IsNpz(data)) o = o with { Normalize = false, CropPadding = 0, HorizontalFlip = false, ValSplit = 0 };
        bool masks = initWeights is not null && File.Exists(initWeights)
            && SafeTensorsFile.Read(initWeights).Names.Any(n => n.StartsWith(InitialWeights.MaskPrefix, StringComparison.Ordinal));
        if (masks && noSparse)
            throw new ArgumentException($"--no-sparse contradicts the masks in --init-weights {initWeights} (mask.* entries); "
                + "remove them or drop --no-sparse", "--no-sparse");
        if (masks) return o with { Sparse = true };
        if (o.ModelConfig is not null && !sparseChosen) return o with { Sparse = false };
        return o;
    }

    /// <summary>Loads the data (an .npz as it is; otherwise an image folder or Fashion-MNIST through
    /// <paramref name="loadFolder"/>), builds the model on <paramref name="device"/> and loads
    /// <paramref name="initWeights"/> (null: drawn from the seed).</summary>
    public static TrainingInputs Load(TrainOptions o, string? data, string? initWeights, Device device, Func<TrainingData> loadFolder)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(loadFolder);
        ModelConfig? config = o.ModelConfig is string path ? ModelConfig.Load(path) : null;
        TrainingData inputs;
        if (NpzImages.IsNpz(data))
        {
            var npz = NpzImages.Load(data!, config?.NumClasses);
            inputs = new TrainingData(npz, null, null, DataNormalization.FashionMnist,
                $"{data}, {npz.Count} images {npz.Channels}x{npz.Height}x{npz.Width}, used as they are (no augmentation, no normalisation)");
        }
        else inputs = loadFolder();
        var train = inputs.Train;
        SlakModel model;
        if (config is null) model = SlakTrainable.Create(o.Preset, train.Channels, train.ClassCount, o.DropPath, o.Seed, device).Model;
        else
        {
            if (config.InChans != train.Channels)
                throw new ArgumentException($"model config {o.ModelConfig}: in_chans is {config.InChans} but the data has "
                    + $"{train.Channels} channels", "--model-config");
            if (config.NumClasses != train.ClassCount)
                throw new ArgumentException($"model config {o.ModelConfig}: num_classes is {config.NumClasses} but the data has "
                    + $"{train.ClassCount} classes", "--model-config");
            if (config.DropPathRate != o.DropPath)
                Console.WriteLine($"note: training with drop path {o.DropPath} (--drop-path) instead of the config's drop_path_rate {config.DropPathRate}");
            model = new SlakModel((config with { DropPathRate = o.DropPath }).Validate(), NN.ModuleInit.FromRandom(new SlakRandom(o.Seed), device));
        }
        IReadOnlyDictionary<string, byte[]>? masks = null;
        if (initWeights is not null)
        {
            var loaded = InitialWeights.Load(model, initWeights);
            Console.WriteLine($"initial weights: {initWeights}" + (loaded.Count > 0 ? $", with {loaded.Count} masks" : ", no masks"));
            if (loaded.Count > 0) masks = loaded;
        }
        return new TrainingInputs(model, masks, inputs);
    }
}
