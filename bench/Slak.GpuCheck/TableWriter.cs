// Writes the table as rows arrive: to standard output and, with --out, to the file, flushing both after every row, so
// that a run cut short (the GPU window ends, the machine goes away) keeps every row it finished. The summary line and
// the exit code come at the end.
using System.Globalization;

namespace Slak.GpuCheck;

/// <summary>The markdown table of one run.</summary>
internal sealed class TableWriter : IDisposable
{
    private readonly CheckOptions _options;
    private readonly TextWriter _stdout;
    private readonly StreamWriter? _file;
    private readonly Dictionary<RowStatus, int> _counts = new() { [RowStatus.Ok] = 0, [RowStatus.Fail] = 0, [RowStatus.Skip] = 0 };
    private string? _device;
    private readonly List<string> _notes = [];

    public TableWriter(CheckOptions options, TextWriter stdout)
    {
        _options = options;
        _stdout = stdout;
        if (options.Out is { } path)
        {
            string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
            if (folder is not null) Directory.CreateDirectory(folder);
            _file = new StreamWriter(path, append: false);
        }

        WriteLine($"# GPU check: device {options.Device}, scale {options.ScaleName} " +
                  (options.Full ? "(SLaK-T, batch 128, 224 px)" : "(smoke size)") +
                  (options.Sample ? $", sampled blocks (seed 0x{options.Seed:x}, {options.EdgeBlocks} per edge, {options.InteriorBlocks} interior)" : "") +
                  $", fp32, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        WriteLine("");
        WriteLine(RowResult.Header);
    }

    /// <summary>Rows written so far, per status.</summary>
    public IReadOnlyDictionary<RowStatus, int> Counts => _counts;

    /// <summary>Records a device fact, reported under the table: the first description names the device; later
    /// distinct ones (where the kernel modules came from, per child process) are listed after it.</summary>
    public void SetDevice(string description)
    {
        if (_device is null) _device = description;
        else if (description != _device && !_notes.Contains(description)) _notes.Add(description);
    }

    /// <summary>Writes one row and flushes.</summary>
    public void Write(RowResult row)
    {
        _counts[row.Status]++;
        WriteLine(row.ToMarkdown(_options.PeakTflops));
    }

    /// <summary>Writes an already formatted row (from a child process) and flushes.</summary>
    public void WriteFormatted(string markdown, RowStatus status)
    {
        _counts[status]++;
        WriteLine(markdown);
    }

    /// <summary>Writes the summary; returns the exit code (1 when any row is FAIL).</summary>
    public int Finish()
    {
        WriteLine("");
        WriteLine(FormattableString.Invariant(
            $"{_counts.Values.Sum()} rows: {_counts[RowStatus.Ok]} ok, {_counts[RowStatus.Fail]} FAIL, {_counts[RowStatus.Skip]} skip. Device: {_device ?? "not opened"}. ms = median of {_options.Repeats} synchronized runs after a warm-up (host clock); GFLOP/s count only taps inside the image; % of an fp32 peak of {_options.PeakTflops} TFLOP/s (--peak-tflops)."));
        foreach (string note in _notes) WriteLine($"- {note}");
        return _counts[RowStatus.Fail] > 0 ? 1 : 0;
    }

    public void Dispose() => _file?.Dispose();

    private void WriteLine(string line)
    {
        _stdout.WriteLine(line);
        _stdout.Flush();
        if (_file is not null)
        {
            _file.WriteLine(line);
            _file.Flush();
        }
    }
}
