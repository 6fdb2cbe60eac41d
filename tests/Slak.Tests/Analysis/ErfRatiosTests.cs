// The high-contribution area ratio r(t) on synthetic maps whose answers are worked out by hand (issue 23 item 1):
// uniform, a single hot pixel, a map where the log10(x + 1) / max transform changes the answer, a non-square map,
// and an all-zero map; and the erf.json layout.
using System.Text.Json;
using NUnit.Framework;
using Slak.Analysis;

namespace Slak.Tests.Analysis;

public sealed class ErfRatiosTests
{
    private static double?[] Ratios(double[] map, int h, int w) =>
        [.. ErfRatios.Compute(new ErfMap(h, w, map, 1, 0)).Select(p => p.Ratio)];

    [Test]
    public void UniformMapGivesTheSquaresArea()
    {
        // 11x11, every value equal: a centred square of side s holds s^2 / 121 of the total; sides 3, 5, 7, 9 hold
        // 0.074, 0.207, 0.405, 0.669, and i stops at 11 // 2 - 1 = 4, so 0.99 is never reached.
        var map = Enumerable.Repeat(3.0, 121).ToArray();
        Assert.That(Ratios(map, 11, 11), Is.EqualTo(new double?[] { 25 / 121.0, 49 / 121.0, 81 / 121.0, null }));
    }

    [Test]
    public void SingleHotPixelGivesTheSmallestSquare()
    {
        var map = new double[9 * 9];
        map[4 * 9 + 4] = 1000;
        Assert.That(Ratios(map, 9, 9), Is.EqualTo(new double?[] { 9 / 81.0, 9 / 81.0, 9 / 81.0, 9 / 81.0 }));
    }

    [Test]
    public void RatiosAreTakenAfterTheLogTransform()
    {
        // Centre 3x3 = 99 (log10(100) = 2 -> 1 after / max), the rest 9 (log10(10) = 1 -> 0.5). Total 9 + 112 * 0.5
        // = 65; squares of side 3, 5, 7, 9 hold 9, 17, 29, 45 -> 0.138, 0.262, 0.446, 0.692. On the raw map the 3x3
        // alone would already hold 891 / 1899 = 0.47 > 0.2.
        var map = Enumerable.Repeat(9.0, 121).ToArray();
        for (int y = 4; y <= 6; y++)
            for (int x = 4; x <= 6; x++) map[y * 11 + x] = 99;
        Assert.That(Ratios(map, 11, 11), Is.EqualTo(new double?[] { 25 / 121.0, 49 / 121.0, 81 / 121.0, null }));
        var scaled = ErfRatios.LogScaled(map);
        Assert.That(scaled[5 * 11 + 5], Is.EqualTo(1.0).Within(1e-15));
        Assert.That(scaled[0], Is.EqualTo(0.5).Within(1e-15));
    }

    [Test]
    public void NonSquareMapUsesTheHeightForTheSearchAndBothCentres()
    {
        // 7 rows x 11 columns, uniform: i = 1 .. 2 (7 // 2 - 1), sides 3 and 5 hold 9 / 77 and 25 / 77 (0.325).
        var map = Enumerable.Repeat(1.0, 77).ToArray();
        Assert.That(Ratios(map, 7, 11), Is.EqualTo(new double?[] { 25 / 77.0, 25 / 77.0, null, null }));
        // 11 rows x 5 columns: the square of side 7 is cut to 7 x 5 by the map's edges.
        map = Enumerable.Repeat(1.0, 55).ToArray();
        Assert.That(ErfRatios.AreaRatio(ErfRatios.LogScaled(map), 11, 5, 0.5), Is.EqualTo(35 / 55.0));
    }

    [Test]
    public void ZeroMapHasNoRatios()
    {
        Assert.That(Ratios(new double[25], 5, 5), Is.All.Null);
    }

    [Test]
    public void JsonHasImagesSkippedAndRatios()
    {
        var map = new ErfMap(11, 11, Enumerable.Repeat(3.0, 121).ToArray(), 48, 2);
        using var doc = JsonDocument.Parse(ErfReport.ToJson(map, ErfRatios.Compute(map)));
        var root = doc.RootElement;
        Assert.That(root.GetProperty("images").GetInt32(), Is.EqualTo(48));
        Assert.That(root.GetProperty("skipped_nan").GetInt32(), Is.EqualTo(2));
        var r = root.GetProperty("ratios");
        Assert.That(r.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "0.2", "0.3", "0.5", "0.99" }));
        Assert.That(r.GetProperty("0.2").GetDouble(), Is.EqualTo(25 / 121.0));
        Assert.That(r.GetProperty("0.99").ValueKind, Is.EqualTo(JsonValueKind.Null));
    }
}
