// The named models. Paper presets follow slak-facts §1.2 (width 1.3 by truncation, kernels [51, 49, 47, 13, 5],
// Decom, bn; intended 40 % sparsity; stochastic depth T 0.1, S 0.4, B 0.5 as in the README scripts). convnext_tiny
// is the ConvNeXt baseline inside the reference code base (kernels [7, 7, 7, 7, 100]: N > K removes the small
// branch; dense; width 1.0).
//
// The nano family is the same architecture, untouched, sized for 28x28 Fashion-MNIST/MNIST. The reference network
// downsamples by 4, 2, 2, 2 = 32, so a 28x28 image cannot pass (28 -> 7 -> 3 -> 1 -> 0); instead of changing the
// stem (which would add a key to config.json that the reference constructor does not have), the data pipeline pads
// images to 32x32, giving stage maps 8x8, 4x4, 2x2, 1x1. Kernels are scaled to those maps like the paper's are to
// 56/28/14/7: K1 = 15 covers the whole 8x8 map from every position (51 on 56 nearly does), K2 = 9 on 4x4, and 5 on
// the 2x2 and 1x1 maps; N = 3. The four nano presets are the paper's comparison in small: ConvNeXt-style dense 7x7,
// RepLKNet-style dense K x K + N x N, decomposed dense, and decomposed at 1.3x width meant for 40 % sparsity.
// Widths [24, 48, 96, 192] (x1.3 = [31, 62, 124, 249] in slak_nano), depths [2, 2, 2, 2]; `slak summary` gives, per
// 32x32 image: slak_nano 1.54 M params / 4.92 M MACs dense, 0.93 M / 2.95 M at 60 % density; slak_nano_dense
// 0.93 M / 3.05 M; replk_nano 0.93 M / 3.50 M; convnext_nano 0.93 M / 2.89 M (tens of MFLOP per training step
// and image, so a few Fashion-MNIST epochs fit in minutes on 2 CPU cores). slak_nano64 is slak_nano for images
// enlarged 2x to 64x64 (stage maps 16, 8, 4, 2; kernels 31, 15, 7, 5 scaled to them): four times the positions per
// feature map for about four times the cost, for runs that want accuracy more than speed.
namespace Slak.Models;

/// <summary>Registry of named model presets.</summary>
public static class ModelPresets
{
    private static readonly int[] PaperKernels = [51, 49, 47, 13, 5];
    private static readonly int[] NanoKernels = [15, 9, 5, 5, 3];
    private static readonly int[] NanoDepths = [2, 2, 2, 2];
    private static readonly int[] NanoDims = [24, 48, 96, 192];

    private static readonly ModelPreset[] All =
    [
        Paper("slak_tiny", [3, 3, 9, 3], [96, 192, 384, 768], 0.1,
              "SLaK-T (paper): 51x51 via 51x5+5x51+5x5, width 1.3, 40% sparse"),
        Paper("slak_small", [3, 3, 27, 3], [96, 192, 384, 768], 0.4,
              "SLaK-S (paper): 51x51 via 51x5+5x51+5x5, width 1.3, 40% sparse"),
        Paper("slak_base", [3, 3, 27, 3], [128, 256, 512, 1024], 0.5,
              "SLaK-B (paper): 51x51 via 51x5+5x51+5x5, width 1.3, 40% sparse"),
        new("convnext_tiny", new ModelConfig
        {
            Depths = [3, 3, 9, 3], Dims = [96, 192, 384, 768], KernelSize = [7, 7, 7, 7, 100], WidthFactor = 1.0,
            Decom = false, Bn = true, DropPathRate = 0.1,
        }, 224, 1.0, "ConvNeXt-T as in the SLaK code base: dense 7x7 (+BN), width 1.0"),
        Nano("slak_nano", NanoKernels, decom: true, width: 1.3, density: 0.6,
             "SLaK in small (28x28 padded to 32): 15x3+3x15+3x3 decomposed, width 1.3, 40% sparse"),
        Nano("slak_nano_dense", NanoKernels, decom: true, width: 1.0, density: 1.0,
             "decomposed 15x3+3x15+3x3, dense, width 1.0 (28x28 padded to 32)"),
        Nano("replk_nano", NanoKernels, decom: false, width: 1.0, density: 1.0,
             "RepLKNet-style dense 15x15 + 3x3, width 1.0 (28x28 padded to 32)"),
        Nano("convnext_nano", [7, 7, 7, 7, 100], decom: false, width: 1.0, density: 1.0,
             "ConvNeXt-style dense 7x7, width 1.0 (28x28 padded to 32)"),
        Nano("slak_nano64", [31, 15, 7, 5, 3], decom: true, width: 1.3, density: 0.6,
             "slak_nano on 64x64 (28x28 enlarged 2x, padded): 31x3+3x31+3x3 on 16x16 maps, width 1.3, 40% sparse",
             inputSize: 64),
    ];

    /// <summary>The default preset of `slak train` on Fashion-MNIST.</summary>
    public const string DefaultSmall = "slak_nano";

    /// <summary>Every preset, in listing order.</summary>
    public static IReadOnlyList<ModelPreset> Presets => All;

    /// <summary>Preset names.</summary>
    public static IEnumerable<string> Names => All.Select(p => p.Name);

    /// <summary>The preset called <paramref name="name"/> (case-insensitive); throws listing the valid names.</summary>
    public static ModelPreset Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException($"unknown model preset '{name}' (known: " +
                $"{string.Join(", ", Names)})", nameof(name));
    }

    private static ModelPreset Paper(string name, int[] depths, int[] dims, double dropPath, string description) =>
        new(name, new ModelConfig
        {
            Depths = depths, Dims = dims, KernelSize = PaperKernels, WidthFactor = 1.3, Decom = true, Bn = true,
            DropPathRate = dropPath,
        }, 224, 0.6, description);

    private static ModelPreset Nano(string name, int[] kernels, bool decom, double width, double density,
                                    string description, int inputSize = 32) =>
        new(name, new ModelConfig
        {
            InChans = 1, NumClasses = 10, Depths = NanoDepths, Dims = NanoDims, KernelSize = kernels,
            WidthFactor = width,
            Decom = decom, Bn = true, DropPathRate = 0.0,
        }, inputSize, density, description);
}
