// The high-contribution area ratio of an ERF map, as RepLKNet's erf/analyze_erf.py computes it (slak-facts §4.7):
// the map is transformed x -> log10(x + 1) / max; r(t) is the area of the smallest centred square of side 2i + 1,
// i = 1 .. H // 2 - 1, centred at (H // 2, W // 2), whose sum exceeds the fraction t of the total, divided by the
// image area (H * W); null when no such square exists. On non-square maps a square wider than the map is cut at the
// map's edges (the area counted is the part inside). A map that is zero everywhere has no ratios (all null).
namespace Slak.Analysis;

/// <summary>High-contribution area ratios of ERF maps.</summary>
public static class ErfRatios
{
    /// <summary>The thresholds the paper's analysis reports.</summary>
    public static IReadOnlyList<double> DefaultThresholds { get; } = [0.2, 0.3, 0.5, 0.99];

    /// <summary>log10(x + 1) / max of the transformed map (all zeros stay zeros; NaN when the map has NaN or a
    /// negative value below -1).</summary>
    public static double[] LogScaled(ReadOnlySpan<double> map)
    {
        var y = new double[map.Length];
        double max = 0;
        for (int i = 0; i < map.Length; i++)
        {
            y[i] = Math.Log10(map[i] + 1);
            if (y[i] > max) max = y[i];
        }
        if (max > 0)
            for (int i = 0; i < y.Length; i++) y[i] /= max;
        return y;
    }

    /// <summary>r(t) on an already transformed map (<see cref="LogScaled"/>), or null when no square's sum exceeds
    /// t of the total (or the total is not positive).</summary>
    public static double? AreaRatio(ReadOnlySpan<double> scaled, int height, int width, double threshold)
    {
        if (height < 1 || width < 1 || scaled.Length != height * width)
            throw new ArgumentException($"map of {scaled.Length} values is not {height} x {width}", nameof(scaled));
        double total = 0;
        foreach (double v in scaled) total += v;
        if (!(total > 0)) return null;
        int cy = height / 2, cx = width / 2;
        for (int i = 1; i < height / 2; i++)
        {
            int y0 = Math.Max(0, cy - i), y1 = Math.Min(height - 1, cy + i);
            int x0 = Math.Max(0, cx - i), x1 = Math.Min(width - 1, cx + i);
            double s = 0;
            for (int y = y0; y <= y1; y++)
                for (int x = x0; x <= x1; x++) s += scaled[y * width + x];
            if (s / total > threshold) return (double)(y1 - y0 + 1) * (x1 - x0 + 1) / ((double)height * width);
        }
        return null;
    }

    /// <summary>r(t) for each threshold on a raw mean map (the log scaling is applied here).</summary>
    public static IReadOnlyList<(double Threshold, double? Ratio)> Compute(ErfMap map,
                                                                         IReadOnlyList<double>? thresholds = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        var scaled = LogScaled(map.Map);
        return [.. (thresholds ?? DefaultThresholds).Select(t => (t, AreaRatio(scaled, map.Height, map.Width, t)))];
    }
}
