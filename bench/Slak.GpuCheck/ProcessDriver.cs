// --isolate process: runs each case group in a child process (this executable again with --child --from --to), which
// reports its rows on standard output ("@@ROW index markdown"); the driver writes each row as it arrives. A child
// that crashes, hangs past --case-timeout without a row, or exits after a sticky CUDA error (exit 3, its failing row
// already reported) is replaced by a new child (a new process, hence a new CUDA context) that starts after the
// case that killed its predecessor; a case whose row never arrived gets a FAIL row naming the exit code or timeout.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace Slak.GpuCheck;

/// <summary>Runs case groups in child processes.</summary>
internal sealed class ProcessDriver(CheckOptions options, IReadOnlyList<GpuCase> cases, TableWriter table)
{
    public void Run()
    {
        int start = 0;
        while (start < cases.Count)
        {
            int end = start;
            while (end < cases.Count && cases[end].Group == cases[start].Group) end++;
            RunGroup(start, end);
            start = end;
        }
    }

    private void RunGroup(int from, int to)
    {
        int next = from;
        while (next < to)
        {
            var (exit, timedOut) = RunChild(next, to, ref next);
            if (next >= to) break;
            if (exit == CheckApp.StickyExitCode && !timedOut) continue;
            string why = timedOut
                ? $"no result within {options.CaseTimeoutSeconds} s: the child process was killed"
                : $"the child process exited with code {exit} during this case (crash?); see the log";
            table.Write(RowResult.Failed(cases[next].Name, cases[next].Op, why));
            next++;
        }
    }

    /// <summary>Runs one child for cases [from, to); advances <paramref name="next"/> past every row
    /// received.</summary>
    private (int Exit, bool TimedOut) RunChild(int from, int to, ref int next)
    {
        var psi = new ProcessStartInfo { RedirectStandardOutput = true, UseShellExecute = false };
        var (file, prefix) = SelfCommand();
        psi.FileName = file;
        foreach (string a in prefix.Concat(options.ChildArguments(from, to))) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        var lines = new BlockingCollection<string?>();
        process.OutputDataReceived += (_, e) => lines.Add(e.Data);
        process.BeginOutputReadLine();
        var timeout = options.CaseTimeoutSeconds > 0 ? TimeSpan.FromSeconds(options.CaseTimeoutSeconds) : Timeout.InfiniteTimeSpan;
        bool timedOut = false;
        while (true)
        {
            if (!lines.TryTake(out string? line, timeout))
            {
                timedOut = true;
                try
                {
                    process.Kill(entireProcessTree: true);
                }
                catch (InvalidOperationException)
                {
                    // It exited by itself meanwhile.
                }

                break;
            }

            if (line is null) break; // end of the child's output
            if (line.StartsWith(CheckApp.DevicePrefix, StringComparison.Ordinal))
            {
                table.SetDevice(line[CheckApp.DevicePrefix.Length..]);
            }
            else if (line.StartsWith(CheckApp.RowPrefix, StringComparison.Ordinal))
            {
                string[] parts = line.Split('\t', 3);
                int index = int.Parse(parts[1], CultureInfo.InvariantCulture);
                table.WriteFormatted(parts[2], StatusOf(parts[2]));
                next = Math.Max(next, index + 1);
            }
            else
            {
                Console.Error.WriteLine(line);
            }
        }

        process.WaitForExit();
        return (process.ExitCode, timedOut);
    }

    /// <summary>The status word at the end of a formatted row.</summary>
    internal static RowStatus StatusOf(string markdown)
    {
        string last = markdown.TrimEnd().TrimEnd('|').Split('|').Last().Trim();
        return last switch { "ok" => RowStatus.Ok, "skip" => RowStatus.Skip, _ => RowStatus.Fail };
    }

    /// <summary>How to start this program again: the apphost itself, or `dotnet Slak.GpuCheck.dll`.</summary>
    private static (string File, string[] Prefix) SelfCommand()
    {
        string process = Environment.ProcessPath ?? throw new InvalidOperationException("the process path is unknown");
        string assembly = typeof(ProcessDriver).Assembly.Location;
        return Path.GetFileNameWithoutExtension(process).Equals("dotnet", StringComparison.OrdinalIgnoreCase) && assembly.Length > 0
            ? (process, [assembly])
            : (process, []);
    }
}
