// The files `slak erf` writes next to its PNG: erf.npy (the raw mean map, H x W, float64, before any log) and
// erf.json {"images": n, "skipped_nan": k, "ratios": {"0.2": r, "0.3": r, "0.5": r, "0.99": r}} (null where no
// square reaches the threshold).
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Slak.IO;

namespace Slak.Analysis;

/// <summary>Writes ERF results.</summary>
public static class ErfReport
{
    /// <summary>Writes erf.npy and erf.json into <paramref name="folder"/> (created when missing); returns their
    /// paths.</summary>
    public static (string Npy, string Json) Write(string folder, ErfMap map,
                                                  IReadOnlyList<(double Threshold, double? Ratio)> ratios)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(ratios);
        Directory.CreateDirectory(folder);
        string npy = Path.Combine(folder, "erf.npy"), json = Path.Combine(folder, "erf.json");
        Npy.Write(npy, map.Map, [map.Height, map.Width]);
        AtomicFile.WriteAllText(json, ToJson(map, ratios) + "\n");
        return (npy, json);
    }

    /// <summary>The erf.json text.</summary>
    public static string ToJson(ErfMap map, IReadOnlyList<(double Threshold, double? Ratio)> ratios)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(ratios);
        var r = new JsonObject();
        foreach (var (t, ratio) in ratios) r[t.ToString("R", CultureInfo.InvariantCulture)] = ratio;
        var root = new JsonObject
        {
            ["images"] = map.Images, ["skipped_nan"] = map.SkippedNaN, ["ratios"] = r,
            ["height"] = map.Height, ["width"] = map.Width,
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}
