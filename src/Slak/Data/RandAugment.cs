// timm's RandAugment (`rand-m9-mstd0.5-inc1` and the other `rand-...` strings): num_layers ops (default 2) chosen
// uniformly with replacement from the 15-op list (the "increasing" list with inc1), each applied with probability
// 0.5 at a magnitude drawn from N(m, mstd) clipped to [0, mmax (10)]; the level-to-argument rules of timm's
// auto_augment (rotate 30 deg, shear 0.3, translate 0.45 of the side, enhance 0.1-1.9 or 1 +- 0.9, posterize 4 bits,
// solarize 256, solarize-add 110; signed arguments negated with probability 0.5); fill colour the ImageNet mean in
// 8 bits, bicubic resampling. Facts from timm's documented configuration strings and its auto_augment module.
using Slak.IO;

namespace Slak.Data;

/// <summary>A parsed timm RandAugment configuration and its application.</summary>
public sealed record RandAugment
{
    /// <summary>The ops of timm's _RAND_TRANSFORMS.</summary>
    public static readonly IReadOnlyList<string> Ops =
        ["AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color", "Contrast",
         "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"];

    /// <summary>The ops of timm's _RAND_INCREASING_TRANSFORMS (inc1).</summary>
    public static readonly IReadOnlyList<string> IncreasingOps =
        ["AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing", "SolarizeAdd",
         "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing", "ShearX", "ShearY",
         "TranslateXRel", "TranslateYRel"];

    /// <summary>Magnitude (0-10 scale).</summary>
    public double Magnitude { get; init; } = 10;

    /// <summary>Ops applied per image.</summary>
    public int NumLayers { get; init; } = 2;

    /// <summary>Standard deviation of the magnitude noise (0: fixed; infinity: uniform in [0, m]).</summary>
    public double MagnitudeStd { get; init; }

    /// <summary>Upper clip of the magnitude.</summary>
    public double MagnitudeMax { get; init; } = 10;

    /// <summary>Use the increasing-severity op list.</summary>
    public bool Increasing { get; init; }

    /// <summary>Probability of each chosen op.</summary>
    public double OpProbability { get; init; } = 0.5;

    /// <summary>The op list in use.</summary>
    public IReadOnlyList<string> OpList => Increasing ? IncreasingOps : Ops;

    /// <summary>Parses a timm string such as <c>rand-m9-mstd0.5-inc1</c> (sections m, n, mstd, mmax, inc; w is
    /// not supported); null for <c>none</c>.</summary>
    /// <exception cref="ArgumentException">The string is not a RandAugment configuration we support.</exception>
    public static RandAugment? Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text is "none" or "") return null;
        var parts = text.Split('-');
        if (parts[0] != "rand")
            throw new ArgumentException($"--aa '{text}': only timm RandAugment strings ('rand-m9-mstd0.5-inc1') or 'none' are supported", nameof(text));
        var ra = new RandAugment();
        foreach (var part in parts.Skip(1))
        {
            int split = part.AsSpan().IndexOfAnyInRange('0', '9');
            if (split <= 0) throw new ArgumentException($"--aa '{text}': section '{part}' has no key and number", nameof(text));
            string key = part[..split], value = part[split..];
            double v = double.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
            ra = key switch
            {
                "m" => ra with { Magnitude = (int)v },
                "n" => ra with { NumLayers = (int)v },
                "mstd" => ra with { MagnitudeStd = v > 100 ? double.PositiveInfinity : v },
                "mmax" => ra with { MagnitudeMax = (int)v },
                "inc" => ra with { Increasing = v != 0 },
                _ => throw new ArgumentException($"--aa '{text}': unknown section '{key}' (supported: m, n, mstd, mmax, inc)", nameof(text)),
            };
        }
        if (ra.NumLayers < 0) throw new ArgumentException($"--aa '{text}': n must be >= 0", nameof(text));
        return ra;
    }

    /// <summary>The argument timm passes to op <paramref name="name"/> at magnitude <paramref name="level"/>
    /// (already clipped), negated when the op's argument is signed and <paramref name="negate"/> is set (the
    /// relative translations are fractions of the side).</summary>
    public static double Argument(string name, double level, bool negate)
    {
        double s = negate ? -1 : 1;
        return name switch
        {
            "AutoContrast" or "Equalize" or "Invert" => 0,
            "Rotate" => s * level / 10 * 30,
            "Posterize" => (int)(level / 10 * 4),
            "PosterizeIncreasing" => 4 - (int)(level / 10 * 4),
            "Solarize" => (int)(level / 10 * 256),
            "SolarizeIncreasing" => 256 - (int)(level / 10 * 256),
            "SolarizeAdd" => (int)(level / 10 * 110),
            "Color" or "Contrast" or "Brightness" or "Sharpness" => level / 10 * 1.8 + 0.1,
            "ColorIncreasing" or "ContrastIncreasing" or "BrightnessIncreasing" or "SharpnessIncreasing" => Math.Max(0.1, 1.0 + s * level / 10 * 0.9),
            "ShearX" or "ShearY" => s * level / 10 * 0.3,
            "TranslateXRel" or "TranslateYRel" => s * level / 10 * 0.45,
            _ => throw new ArgumentException($"unknown RandAugment op '{name}'", nameof(name)),
        };
    }

    /// <summary>Applies op <paramref name="name"/> with argument <paramref name="arg"/> (see
    /// <see cref="Argument"/>).</summary>
    public static DecodedImage ApplyOp(DecodedImage img, string name, double arg, (byte R, byte G, byte B) fill) => name switch
    {
        "AutoContrast" => PilOps.AutoContrast(img),
        "Equalize" => PilOps.Equalize(img),
        "Invert" => PilOps.Invert(img),
        "Rotate" => PilOps.Rotate(img, arg, fill),
        "Posterize" or "PosterizeIncreasing" => arg >= 8 ? img : PilOps.Posterize(img, (int)arg),
        "Solarize" or "SolarizeIncreasing" => PilOps.Solarize(img, (int)arg),
        "SolarizeAdd" => PilOps.SolarizeAdd(img, (int)arg),
        "Color" or "ColorIncreasing" => PilOps.Color(img, arg),
        "Contrast" or "ContrastIncreasing" => PilOps.Contrast(img, arg),
        "Brightness" or "BrightnessIncreasing" => PilOps.Brightness(img, arg),
        "Sharpness" or "SharpnessIncreasing" => PilOps.Sharpness(img, arg),
        "ShearX" => PilOps.Affine(img, 1, arg, 0, 0, 1, 0, fill),
        "ShearY" => PilOps.Affine(img, 1, 0, 0, arg, 1, 0, fill),
        "TranslateXRel" => PilOps.Affine(img, 1, 0, arg * img.Width, 0, 1, 0, fill),
        "TranslateYRel" => PilOps.Affine(img, 1, 0, 0, 0, 1, arg * img.Height, fill),
        _ => throw new ArgumentException($"unknown RandAugment op '{name}'", nameof(name)),
    };

    /// <summary>One draw: <see cref="NumLayers"/> ops, each kept with <see cref="OpProbability"/>, with its clipped
    /// magnitude and sign. Returned so that tests can check the distribution; <see cref="Apply"/> uses it.</summary>
    public IReadOnlyList<(string Op, double Magnitude, double Argument)> Draw(SlakRandom rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        var list = OpList;
        var chosen = new List<(string, double, double)>(NumLayers);
        for (int i = 0; i < NumLayers; i++)
        {
            string op = list[rng.NextInt(list.Count)];
            if (OpProbability < 1 && rng.NextDouble() > OpProbability) continue;
            double m = Magnitude;
            if (double.IsPositiveInfinity(MagnitudeStd)) m = rng.NextDouble() * m;
            else if (MagnitudeStd > 0) m += MagnitudeStd * rng.NextNormal();
            m = Math.Max(0, Math.Min(m, MagnitudeMax));
            bool negate = rng.NextDouble() > 0.5;
            chosen.Add((op, m, Argument(op, m, negate)));
        }
        return chosen;
    }

    /// <summary>Applies one random draw to <paramref name="img"/>.</summary>
    public DecodedImage Apply(DecodedImage img, SlakRandom rng, (byte R, byte G, byte B) fill)
    {
        foreach (var (op, _, arg) in Draw(rng)) img = ApplyOp(img, op, arg, fill);
        return img;
    }
}
