// The pieces every comparison program repeats: the common arguments (--reps, --out, --note), a report written to the
// console and to a file at once, interleaved A/B timing and random inputs. One copy here instead of one per program.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Slak.Autograd;

namespace Slak.Bench;

/// <summary>The arguments shared by the programs that write a results file: <c>--reps N</c>, <c>--out FILE</c>,
/// <c>--note TEXT</c>, plus the options a program adds.</summary>
internal sealed class ReportArgs
{
    public int Reps { get; private set; }
    public string? Out { get; private set; }
    public string? Note { get; private set; }

    /// <summary>Parses <paramref name="args"/>; <paramref name="extra"/> takes the program's own options (the option
    /// and a function that returns its value) and says whether it knew the option. Null (with a message naming the
    /// argument and the <paramref name="usage"/>) on an unknown argument.</summary>
    public static ReportArgs? Parse(string[] args, int defaultReps, string usage = "--reps N, --out FILE, --note TEXT",
        Func<string, Func<string>, bool>? extra = null)
    {
        var r = new ReportArgs { Reps = defaultReps };
        for (int i = 0; i < args.Length; i++)
        {
            int at = i;
            string Next() => ++i < args.Length ? args[i] : throw new ArgumentException($"{args[at]} needs a value");
            switch (args[i])
            {
                case "--reps": r.Reps = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--out": r.Out = Next(); break;
                case "--note": r.Note = Next(); break;
                default:
                    if (extra?.Invoke(args[i], Next) == true) break;
                    Console.Error.WriteLine($"unknown argument '{args[i]}' (use {usage})");
                    return null;
            }
        }
        return r;
    }
}

/// <summary>A Markdown report printed as it is written and kept for the results file.</summary>
internal sealed class Report
{
    private readonly StringBuilder _text = new();

    /// <summary>Prints <paramref name="s"/> and appends it as a line of the report.</summary>
    public void Line(string s = "")
    {
        Console.WriteLine(s);
        _text.AppendLine(s);
    }

    /// <summary>Everything written so far.</summary>
    public override string ToString() => _text.ToString();
}

/// <summary>Same-process A/B timing: the best of interleaved rounds (the best is the least disturbed by other
/// processes on a shared machine).</summary>
internal static class Interleaved
{
    /// <summary>Best milliseconds of <paramref name="a"/> and of <paramref name="b"/> over <paramref name="reps"/>
    /// rounds after 3 warm-up rounds, alternating which side runs first so that neither always inherits the other's
    /// cache state.</summary>
    public static (double A, double B) Best(int reps, Action a, Action b)
    {
        for (int i = 0; i < 3; i++) { a(); b(); }
        double ba = double.MaxValue, bb = double.MaxValue;
        for (int i = 0; i < reps; i++)
        {
            if (i % 2 == 0) { ba = Math.Min(ba, TimeMs(a)); bb = Math.Min(bb, TimeMs(b)); }
            else { bb = Math.Min(bb, TimeMs(b)); ba = Math.Min(ba, TimeMs(a)); }
        }
        return (ba, bb);
    }

    /// <summary>Milliseconds of one call of <paramref name="run"/>.</summary>
    public static double TimeMs(Action run)
    {
        long t0 = Stopwatch.GetTimestamp();
        run();
        return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    }
}

/// <summary>Random inputs of the comparison programs.</summary>
internal static class BenchData
{
    /// <summary><paramref name="n"/> values uniform in offset +- scale.</summary>
    public static float[] Uniform(Random rng, int n, double scale, double offset = 0) =>
        Enumerable.Range(0, n).Select(_ => (float)(offset + scale * (rng.NextDouble() * 2 - 1))).ToArray();

    /// <summary>A CPU tensor of <paramref name="shape"/>, uniform in +- scale, that requires a gradient.</summary>
    public static Tensor Param(Random rng, int[] shape, double scale)
    {
        var t = Tensor.FromArray(Uniform(rng, shape.Aggregate(1, (p, d) => p * d), scale), shape, Device.Cpu);
        t.RequiresGrad = true;
        return t;
    }
}
