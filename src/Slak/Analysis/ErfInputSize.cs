// The default image side of `slak erf` (issue 23): 1024 for the 224-px (ImageNet) models, as SLaK's and RepLKNet's
// ERF scripts use; 4x the training input size for the small presets (nano family: 128 for 32x32, 256 for 64x64).
// A config.json does not name its preset, so the preset is recognised by its architecture (depths, dims, kernel
// sizes, width factor, Decom, bn; channels, classes and drop path may differ).
using Slak.Models;

namespace Slak.Analysis;

/// <summary>Default ERF input sizes.</summary>
public static class ErfInputSize
{
    /// <summary>The preset whose architecture <paramref name="config"/> has, or null.</summary>
    public static ModelPreset? MatchPreset(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return ModelPresets.Presets.FirstOrDefault(p =>
            p.Config.Depths.SequenceEqual(config.Depths) && p.Config.Dims.SequenceEqual(config.Dims)
            && p.Config.KernelSize.SequenceEqual(config.KernelSize) && p.Config.WidthFactor.Equals(config.WidthFactor)
            && p.Config.Decom == config.Decom && p.Config.Bn == config.Bn);
    }

    /// <summary>The ERF side for a model trained at <paramref name="trainingSize"/>: 1024 for 224, else 4x.</summary>
    public static int ForTrainingSize(int trainingSize)
    {
        if (trainingSize < 1)
            throw new ArgumentOutOfRangeException(nameof(trainingSize), trainingSize, "training input size must be >= 1");
        return trainingSize == 224 ? 1024 : 4 * trainingSize;
    }
}
