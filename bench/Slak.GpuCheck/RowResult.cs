// A row of the check's markdown table. Every row ends with its status word (ok, FAIL or skip) so that a partial
// table (a run cut short) is still readable line by line; the note says what failed or why a row was skipped.
using System.Globalization;

namespace Slak.GpuCheck;

/// <summary>Status of a row.</summary>
internal enum RowStatus
{
    Ok,
    Fail,
    Skip,
}

/// <summary>One row of the table.</summary>
internal sealed record RowResult(string Name, string Op, RowStatus Status)
{
    public string Shape { get; init; } = "";
    public double MaxAbs { get; init; } = double.NaN;
    public double MaxRel { get; init; } = double.NaN;
    public long Compared { get; init; }
    public double Ms { get; init; } = double.NaN;
    public double Flops { get; init; }
    public double Bytes { get; init; }
    public string Note { get; init; } = "";

    /// <summary>The table header (two lines).</summary>
    public static string Header =>
        "| kernel | op | shape | max abs err | max rel err | compared | ms (median) | GFLOP/s | GB/s | % fp32 peak | note | status |\n" +
        "|---|---|---|---|---|---|---|---|---|---|---|---|";

    /// <summary>The status word.</summary>
    public string StatusWord => Status switch { RowStatus.Ok => "ok", RowStatus.Fail => "FAIL", _ => "skip" };

    /// <summary>A row that failed with <paramref name="message"/>.</summary>
    public static RowResult Failed(string name, string op, string message) =>
        new(name, op, RowStatus.Fail) { Note = message };

    /// <summary>A row that was not run, with the reason.</summary>
    public static RowResult Skipped(string name, string op, string reason) =>
        new(name, op, RowStatus.Skip) { Note = reason };

    /// <summary>The markdown line (one line: '|' and newlines in texts are escaped).</summary>
    public string ToMarkdown(double peakTflops)
    {
        static string F(double v, string format) =>
            double.IsNaN(v) ? "-" : v.ToString(format, CultureInfo.InvariantCulture);
        double gflops = Flops > 0 && Ms > 0 ? Flops / (Ms * 1e6) : double.NaN;
        double gbs = Bytes > 0 && Ms > 0 ? Bytes / (Ms * 1e6) : double.NaN;
        double peak = peakTflops > 0 ? 100 * gflops / (peakTflops * 1000) : double.NaN;
        string[] cells =
        [
            Name, Op, Shape, F(MaxAbs, "0.0e+0"), F(MaxRel, "0.0e+0"),
            Compared > 0 ? Compared.ToString(CultureInfo.InvariantCulture) : "-",
            F(Ms, "0.000"), F(gflops, "0.0"), F(gbs, "0.0"), F(peak, "0.0"), Note, StatusWord,
        ];
        return "| " + string.Join(" | ", cells.Select(Escape)) + " |";
    }

    private static string Escape(string text) =>
        text.Replace("|", "\\|", StringComparison.Ordinal).ReplaceLineEndings(" ");
}
