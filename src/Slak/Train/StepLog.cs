// RUN/steps.jsonl: one JSON line per optimizer step, {"step": k, "loss": L, "lr": r} with k = 1 for the first step,
// L the mean loss of the step's batch (over its micro-batches) and r the learning rate the step used, both written
// with round-trip precision, so a run can be compared with another implementation step by step (README, "Comparing
// a training run with PyTorch step by step"). A resumed run keeps the records up to its checkpoint's step and drops
// later ones (the steps it is about to redo), so the file always describes one uninterrupted trajectory.
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Slak.Train;

/// <summary>One record of steps.jsonl.</summary>
/// <param name="Step">Optimizer step (1-based).</param>
/// <param name="Loss">Mean loss of the step's batch.</param>
/// <param name="Lr">Learning rate used by the step.</param>
internal readonly record struct StepRecord(long Step, double Loss, double Lr);

/// <summary>Appends per-step records to a run folder's steps.jsonl.</summary>
internal sealed class StepLog : IDisposable
{
    /// <summary>File name inside the run folder.</summary>
    public const string FileName = "steps.jsonl";

    private readonly StreamWriter _writer;

    private StepLog(StreamWriter writer, string path)
    {
        _writer = writer;
        Path = path;
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>Opens <paramref name="runFolder"/>/steps.jsonl for a run whose next step is
    /// <paramref name="stepsDone"/> + 1: records of later steps (from an interrupted run) are removed, earlier ones
    /// kept; a fresh run (0 steps done) starts an empty file.</summary>
    public static StepLog Open(string runFolder, long stepsDone)
    {
        ArgumentNullException.ThrowIfNull(runFolder);
        if (stepsDone < 0) throw new ArgumentOutOfRangeException(nameof(stepsDone), stepsDone, "steps done must be >= 0");
        Directory.CreateDirectory(runFolder);
        string path = System.IO.Path.Combine(runFolder, FileName);
        var keep = stepsDone > 0 && File.Exists(path)
            ? Read(path).Where(r => r.Step <= stepsDone).ToList()
            : [];
        var writer = new StreamWriter(path, append: false, new UTF8Encoding(false)) { NewLine = "\n" };
        foreach (var r in keep) writer.WriteLine(FormatLine(r));
        writer.Flush();
        return new StepLog(writer, path);
    }

    /// <summary>Appends one record (written through at once, so the file is complete whenever the run stops).</summary>
    public void Append(long step, double loss, double lr)
    {
        _writer.WriteLine(FormatLine(new StepRecord(step, loss, lr)));
        _writer.Flush();
    }

    /// <summary>The JSON line of a record (no newline). Non-finite values cannot be written in JSON and
    /// throw.</summary>
    public static string FormatLine(StepRecord record)
    {
        if (!double.IsFinite(record.Loss) || !double.IsFinite(record.Lr))
            throw new ArgumentException($"step {record.Step}: loss {record.Loss} and lr {record.Lr} must be finite for steps.jsonl", nameof(record));
        static string R(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        return string.Create(CultureInfo.InvariantCulture, $"{{\"step\": {record.Step}, \"loss\": {R(record.Loss)}, \"lr\": {R(record.Lr)}}}");
    }

    /// <summary>Reads the records of a steps.jsonl file (blank lines skipped).</summary>
    /// <exception cref="InvalidDataException">A line is not a record, naming the line.</exception>
    public static IReadOnlyList<StepRecord> Read(string path)
    {
        var result = new List<StepRecord>();
        int number = 0;
        foreach (var line in File.ReadLines(path))
        {
            number++;
            if (line.Trim().Length == 0) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                var root = doc.RootElement;
                result.Add(new StepRecord(root.GetProperty("step").GetInt64(), root.GetProperty("loss").GetDouble(),
                    root.GetProperty("lr").GetDouble()));
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or FormatException or InvalidOperationException)
            {
                throw new InvalidDataException($"{path}:{number}: not a step record ({e.Message}): '{line}'", e);
            }
        }
        return result;
    }

    /// <inheritdoc />
    public void Dispose() => _writer.Dispose();
}
