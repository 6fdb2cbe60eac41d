// tools/comparison_table.py (issue 23 item 2's table tool) on synthetic run folders with known answers: validation
// selects the epoch (never the test set), mean +- sample std over seeds, the final epoch without validation, params
// and MACs from `slak summary` output, ERF ratios as mean +- std, the per-run table, and errors for mixed budgets,
// repeated seeds and a selected epoch the test set did not score. Needs /usr/bin/python3 (standard library only).
using System.Diagnostics;
using NUnit.Framework;
using Slak.Tests.Cuda;

namespace Slak.Tests.Analysis;

public sealed class ComparisonTableToolTests
{
    private const string Python = "/usr/bin/python3";
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), $"slak-cmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    // The last lines of `slak summary --preset P --weights W` (the tool reads the total line).
    private static string Summary(string live) =>
        "part          output       params     MACs  params@trained  MACs@trained\n" +
        "------------  ----------  -------  -------  --------------  ------------\n" +
        $"total         in 1x32x32   1.54 M   4.92 M  {live,14}        2.84 M\n";

    private void Run(string name, string preset, int seed, int epochs, (double? Test, double? Val)[] rows, string? erf = null,
                     string? summary = null)
    {
        string folder = Path.Combine(_dir, name);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "options.json"),
            $"{{\"preset\": \"{preset}\", \"seed\": {seed}, \"epochs\": {epochs}, \"batch_size\": 128}}");
        File.WriteAllLines(Path.Combine(folder, "metrics.jsonl"), rows.Select((r, i) =>
            FormattableString.Invariant($"{{\"epoch\": {i + 1}") +
            (r.Test is double t ? FormattableString.Invariant($", \"test_top1\": {t}") : "") +
            (r.Val is double v ? FormattableString.Invariant($", \"val_top1\": {v}") : "") + "}"));
        if (erf is not null) File.WriteAllText(Path.Combine(folder, "erf.json"), erf);
        if (summary is not null) File.WriteAllText(Path.Combine(folder, "summary.txt"), summary);
    }

    private static (int Code, string Out, string Err) Tool(params string[] args)
    {
        if (!File.Exists(Python)) Assert.Ignore($"{Python} not installed");
        string root = NvrtcTestSupport.RepositoryRoot() ?? throw new InconclusiveException("repository root not found");
        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(root, "tools", "comparison_table.py"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout, stderr);
    }

    [Test]
    public void TableHasValidationSelectedMeanAndStd()
    {
        // Preset a: validation picks epoch 2, 1, 3 (test top-1 there: 88, 89, 90; the test maxima 95 are elsewhere).
        Run("a-0", "a", 0, 3, [(95, 50), (88, 70), (80, 60)], """{"ratios": {"0.2": 0.1, "0.3": 0.2, "0.5": 0.4, "0.99": null}}""",
            Summary("928.0 K"));
        Run("a-1", "a", 1, 3, [(89, 80), (95, 70), (80, 60)], """{"ratios": {"0.2": 0.3, "0.3": 0.4, "0.5": 0.6, "0.99": null}}""",
            Summary("930.0 K"));
        Run("a-2", "a", 2, 3, [(95, 50), (80, 60), (90, 70)], summary: Summary("929.0 K"));
        // Preset b: no validation metric, one seed: the final epoch.
        Run("b-7", "b", 7, 3, [(95, null), (91, null), (87.5, null)]);
        var (code, output, err) = Tool(_dir, "--erf", "--per-run", "--order", "b,a");
        TestContext.Out.WriteLine(output + err);
        Assert.That(code, Is.Zero, err);
        var lines = output.Trim().Split('\n');
        Assert.That(lines, Has.Length.EqualTo(11));
        Assert.That(lines[2], Is.EqualTo("| b | 1 | final epoch | 87.50 (one seed) | 7: 87.50 @ 3 | - | - | - | - | - | - | - | - |"));
        // r(0.2) of a: 0.1 and 0.3 (a-2 has no ERF): mean 0.2, sample std 0.1414.
        Assert.That(lines[3], Is.EqualTo(
            "| a | 3 | validation | 89.00 +- 1.00 | 0: 88.00 @ 2, 1: 89.00 @ 1, 2: 90.00 @ 3 | 1.54 M | 4.92 M | 929.0 K | 2.84 M "
            + "| 0.200 +- 0.141 | 0.300 +- 0.141 | 0.500 +- 0.141 | - (2 null) |"));
        Assert.That(lines[4], Is.Empty);
        Assert.That(lines[7], Is.EqualTo("| b-7 | 7 | 3 / 3 | - | 87.50 | 87.50 | - | - | - | - |"));
        Assert.That(lines[8], Is.EqualTo("| a-0 | 0 | 2 / 3 | 70.00 | 88.00 | 80.00 | 0.1000 | 0.2000 | 0.4000 | - |"));
    }

    [Test]
    public void ASelectedEpochWithoutATestScoreIsAnError()
    {
        // Validation selects epoch 1, but the test set was scored only after the last epoch.
        Run("a-0", "a", 0, 2, [(null, 90), (85, 80)]);
        var (code, _, err) = Tool(_dir);
        Assert.That(code, Is.Not.Zero);
        Assert.That(err, Does.Contain("a-0: validation selects epoch 1").And.Contain("--eval-test-every-epoch"));
    }

    [Test]
    public void MixedBudgetsAndRepeatedSeedsAreErrors()
    {
        Run("a-0", "a", 0, 3, [(80, 1), (81, 2), (82, 3)]);
        Run("a-1", "a", 1, 2, [(80, 1), (81, 2)]);
        var (code, _, err) = Tool(_dir);
        Assert.That(code, Is.Not.Zero);
        Assert.That(err, Does.Contain("different budgets").And.Contain("a-1"));

        Directory.Delete(Path.Combine(_dir, "a-1"), recursive: true);
        Run("a-0-again", "a", 0, 3, [(80, 1), (81, 2), (82, 3)]);
        (code, _, err) = Tool(_dir);
        Assert.That(code, Is.Not.Zero);
        Assert.That(err, Does.Contain("seed appears twice"));
    }
}
