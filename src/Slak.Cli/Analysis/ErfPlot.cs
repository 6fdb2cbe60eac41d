// The PNG of `slak erf` (ScottPlot 5): a heat map of the mean ERF map after log10(x + 1) / max (the analysis
// transform of slak-facts §4.7) drawn like the image (row 0 at the top, checked), without tick labels (they
// would count rows upwards), with a colour bar and the ratios in the title.
using System.Globalization;
using ScottPlot;
using Slak.Analysis;

namespace Slak.Cli.Analysis;

/// <summary>Writes the ERF heat map.</summary>
internal static class ErfPlot
{
    /// <summary>Renders <paramref name="map"/> to <paramref name="path"/>.</summary>
    public static void Write(ErfMap map, IReadOnlyList<(double Threshold, double? Ratio)> ratios, string title,
                             string path)
    {
        var scaled = ErfRatios.LogScaled(map.Map);
        var data = new double[map.Height, map.Width];
        for (int y = 0; y < map.Height; y++)
            for (int x = 0; x < map.Width; x++) data[y, x] = scaled[y * map.Width + x];
        var plot = new Plot();
        var heat = plot.Add.Heatmap(data);
        heat.Colormap = new ScottPlot.Colormaps.Viridis();
        plot.Add.ColorBar(heat);
        string r = string.Join(", ", ratios.Select(p => string.Create(CultureInfo.InvariantCulture,
            $"r({p.Threshold:0.##}) = {(p.Ratio is double v ? v.ToString("0.0000", CultureInfo.InvariantCulture) : "-")}")));
        plot.Title($"{title}\nERF, log10(x + 1) / max, {map.Images} images: {r}", 11);
        plot.Axes.SquareUnits();
        plot.Axes.Left.TickLabelStyle.IsVisible = false;
        plot.Axes.Bottom.TickLabelStyle.IsVisible = false;
        plot.HideGrid();
        int side = 640;
        plot.SavePng(path, side + 120, side);
    }
}
