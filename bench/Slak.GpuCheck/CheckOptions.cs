// Command-line options of the GPU check. Every option has a default that suits `bench/gpu/run.sh` on a GPU; the
// emulator runs pass --device cuda-emu (and --scale tiny, or --scale full --blocks sample).
using System.Globalization;

namespace Slak.GpuCheck;

/// <summary>How the cases are isolated from each other.</summary>
internal enum Isolation
{
    /// <summary>One child process per case group; a crash or a sticky CUDA error restarts the group after the
    /// failed case in a new process (a new CUDA context).</summary>
    Process,

    /// <summary>Every case in this process; a sticky error marks the remaining cases <c>skip</c>.</summary>
    None,
}

/// <summary>Parsed options of <c>Slak.GpuCheck</c>.</summary>
internal sealed record CheckOptions
{
    /// <summary>Usage text (also printed by <c>--help</c>).</summary>
    public const string Usage =
        "Slak.GpuCheck [--device cuda|cuda:N|cuda-emu] [--scale full|tiny] [--blocks all|sample] [--repeats N]\n" +
        "              [--out table.md] [--only NAME[,NAME...]] [--group G[,G...]] [--isolate process|none]\n" +
        "              [--case-timeout S] [--seed S] [--edge-blocks K] [--interior-blocks R] [--peak-tflops T]\n" +
        "              [--no-e2e]\n" +
        "       Slak.GpuCheck --kernel dwconv_fused_kernel|dwconv_fused_wgrad_kernel|dwconv_strip_kernel|dwconv_strip_wgrad_kernel --shape N,C,H,W\n" +
        "              --branches KHxKW[,KHxKW...] [--density D] [--device ...] [--repeats N] [--blocks ...] [--out ...]\n" +
        "                                                    (one kernel at a user's shape: its rows only)\n" +
        "       Slak.GpuCheck --list                         (one line per case: group, row name)\n" +
        "       Slak.GpuCheck --build-kernel-cache DIR [--arch 90]   (prebuilt CUBINs for bench/gpu/prepare.sh)";

    public string Device { get; init; } = "cuda";
    public bool Full { get; init; } = true;
    public bool Sample { get; init; }
    public int Repeats { get; init; } = 20;
    public string? Out { get; init; }
    public IReadOnlyList<string> Only { get; init; } = [];
    public IReadOnlyList<string> Groups { get; init; } = [];
    public Isolation Isolate { get; init; } = Isolation.Process;
    public double CaseTimeoutSeconds { get; init; } = 300;
    public ulong Seed { get; init; } = 0x5A3C_0019UL;
    public int EdgeBlocks { get; init; } = 2;
    public int InteriorBlocks { get; init; } = 4;
    public double PeakTflops { get; init; } = 66.9;
    public bool EndToEnd { get; init; } = true;
    public bool List { get; init; }
    public bool Help { get; init; }
    public string? BuildKernelCache { get; init; }
    public int Arch { get; init; } = 90;

    /// <summary>--kernel: time only this kernel at <see cref="Shape"/> and <see cref="Branches"/> (the micro-benchmark
    /// of a user's shape; see <see cref="Cases.UserCases"/>).</summary>
    public string? Kernel { get; init; }
    public IReadOnlyList<int>? Shape { get; init; }
    public IReadOnlyList<(int Kh, int Kw)>? Branches { get; init; }
    public double Density { get; init; } = 0.6;

    /// <summary>Child mode (internal): run cases [From, To) of the selected list and report rows on stdout.</summary>
    public bool Child { get; init; }
    public int From { get; init; }
    public int To { get; init; } = int.MaxValue;

    /// <summary>The original arguments (a child gets them again, plus its range).</summary>
    public IReadOnlyList<string> Raw { get; init; } = [];

    /// <summary>"full" or "tiny".</summary>
    public string ScaleName => Full ? "full" : "tiny";

    /// <summary>Parses <paramref name="args"/>; throws <see cref="ArgumentException"/> naming the bad option.</summary>
    public static CheckOptions Parse(IReadOnlyList<string> args)
    {
        var o = new CheckOptions { Raw = args.ToArray() };
        string scale = "full", blocks = "all";
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            string Next() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{a} needs a value");
            int NextInt(int min) => int.TryParse(Next(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= min
                ? v : throw new ArgumentException($"{a} needs an integer >= {min}, got '{args[i]}'");
            double NextDouble() => double.TryParse(Next(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v >= 0
                ? v : throw new ArgumentException($"{a} needs a number >= 0, got '{args[i]}'");
            o = a switch
            {
                "--device" => o with { Device = Next() },
                "--scale" => (scale = Next()) is "full" or "tiny" ? o
                    : throw new ArgumentException($"--scale must be full or tiny, got '{scale}'"),
                "--blocks" => (blocks = Next()) is "all" or "sample" ? o
                    : throw new ArgumentException($"--blocks must be all or sample, got '{blocks}'"),
                "--repeats" => o with { Repeats = NextInt(1) },
                "--out" => o with { Out = Next() },
                "--only" => o with { Only = Split(Next()) },
                "--group" => o with { Groups = Split(Next()) },
                "--isolate" => Next() switch
                {
                    "process" => o with { Isolate = Isolation.Process },
                    "none" => o with { Isolate = Isolation.None },
                    var v => throw new ArgumentException($"--isolate must be process or none, got '{v}'"),
                },
                "--case-timeout" => o with { CaseTimeoutSeconds = NextDouble() },
                "--seed" => o with
                {
                    Seed = ulong.TryParse(Next().Replace("0x", "", StringComparison.OrdinalIgnoreCase), NumberStyles.HexNumber,
                        CultureInfo.InvariantCulture, out ulong s) ? s : throw new ArgumentException($"--seed needs a hex number, got '{args[i]}'"),
                },
                "--edge-blocks" => o with { EdgeBlocks = NextInt(0) },
                "--interior-blocks" => o with { InteriorBlocks = NextInt(0) },
                "--peak-tflops" => o with { PeakTflops = NextDouble() },
                "--no-e2e" => o with { EndToEnd = false },
                "--kernel" => o with { Kernel = Next() },
                "--shape" => o with { Shape = ParseShape(Next()) },
                "--branches" => o with { Branches = ParseBranches(Next()) },
                "--density" => (NextDouble() is var d && d <= 1) ? o with { Density = d }
                    : throw new ArgumentException($"--density must be in [0, 1], got '{args[i]}'"),
                "--list" => o with { List = true },
                "--help" or "-h" => o with { Help = true },
                "--build-kernel-cache" => o with { BuildKernelCache = Next() },
                "--arch" => o with { Arch = NextInt(30) },
                "--child" => o with { Child = true },
                "--from" => o with { From = NextInt(0) },
                "--to" => o with { To = NextInt(0) },
                _ => throw new ArgumentException($"unknown option '{a}'\n{Usage}"),
            };
        }

        return o with { Full = scale == "full", Sample = blocks == "sample" };
    }

    /// <summary>The arguments a child process gets: the original ones without any range, plus its range.</summary>
    public IReadOnlyList<string> ChildArguments(int from, int to)
    {
        var result = new List<string>();
        for (int i = 0; i < Raw.Count; i++)
        {
            if (Raw[i] is "--from" or "--to" or "--out") { i++; continue; }
            if (Raw[i] is "--child") continue;
            result.Add(Raw[i]);
        }

        result.AddRange(["--child", "--from", from.ToString(CultureInfo.InvariantCulture), "--to", to.ToString(CultureInfo.InvariantCulture)]);
        return result;
    }

    private static int[] ParseShape(string text)
    {
        var parts = Split(text);
        var dims = parts.Select(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out int v) ? v : 0).ToArray();
        if (dims.Length != 4 || dims.Any(v => v < 1))
            throw new ArgumentException($"--shape must be N,C,H,W with four positive integers, got '{text}'");
        return dims;
    }

    private static (int Kh, int Kw)[] ParseBranches(string text)
    {
        var result = new List<(int, int)>();
        foreach (string b in Split(text))
        {
            var hw = b.Split('x');
            if (hw.Length != 2 || !int.TryParse(hw[0], NumberStyles.None, CultureInfo.InvariantCulture, out int kh)
                || !int.TryParse(hw[1], NumberStyles.None, CultureInfo.InvariantCulture, out int kw) || kh < 1 || kw < 1
                || kh % 2 == 0 || kw % 2 == 0)
                throw new ArgumentException($"--branches must be odd kernel sizes KHxKW[,KHxKW...], got '{b}' in '{text}'");
            result.Add((kh, kw));
        }

        if (result.Count == 0) throw new ArgumentException($"--branches needs at least one KHxKW, got '{text}'");
        return [.. result];
    }

    private static string[] Split(string list) =>
        list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
