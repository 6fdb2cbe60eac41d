// What a result file records about the run that wrote it (issue 27: machine, date, commit and load beside every
// number): the commit checked out, the CPU's model name and the load average, read the same way by every program.
using System.Diagnostics;

namespace Slak.Bench;

/// <summary>Facts about the current run for the headers of bench/results files.</summary>
internal static class RunInfo
{
    /// <summary>The short hash of the checked-out commit, or "unknown" outside a git checkout.</summary>
    public static string Commit()
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("git", "rev-parse --short HEAD")
                { RedirectStandardOutput = true, UseShellExecute = false })!;
            string s = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit();
            return p.ExitCode == 0 && s.Length > 0 ? s : "unknown";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "unknown";
        }
    }

    /// <summary>The CPU's model name from /proc/cpuinfo, or "unknown CPU".</summary>
    public static string CpuModel()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line is null ? "unknown CPU" : line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
        }
        catch (IOException)
        {
            return "unknown CPU";
        }
    }

    /// <summary>/proc/loadavg as it reads now (1, 5 and 15-minute averages, runnable/total tasks, last pid).</summary>
    public static string LoadAverage() => File.ReadAllText("/proc/loadavg").Trim();
}
