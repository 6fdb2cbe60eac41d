// Case isolation with child processes (the default, --isolate process), through the real executable: a case that
// kills its process gets a FAIL row naming the exit code and the group continues in a new process; a sticky device
// error (injected: the emulator has none) ends its child after the failed row and a new child continues. Faults are
// injected with SLAK_GPUCHECK_FAULT (test-only).
using System.Diagnostics;
using NUnit.Framework;
using Slak.GpuCheck;
using Slak.Tests.Cuda;

namespace Slak.Tests.GpuCheck;

[TestFixture]
[NonParallelizable]
public class GpuCheckIsolationTests
{
    private static (int Exit, string[] Rows) RunApp(string fault)
    {
        string app = Path.Combine(TestContext.CurrentContext.TestDirectory, "Slak.GpuCheck");
        if (!File.Exists(app)) Assert.Ignore($"{app} not built");
        string file = Path.Combine(NvrtcTestSupport.TempFolder(), "table.md");
        var psi = new ProcessStartInfo(app) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { "--device", "cuda-emu", "--scale", "tiny", "--repeats", "1", "--group", "elementwise", "--no-e2e", "--out", file })
            psi.ArgumentList.Add(a);
        psi.Environment[CheckApp.FaultVariable] = fault;
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        Assert.That(p.WaitForExit(TimeSpan.FromMinutes(3)), Is.True, "the check hung");
        TestContext.Out.WriteLine(stdout);
        TestContext.Out.WriteLine(stderr.Result);
        string[] rows = File.ReadAllLines(file).Where(l => l.StartsWith("| ", StringComparison.Ordinal) && !l.StartsWith("| kernel |", StringComparison.Ordinal)).ToArray();
        return (p.ExitCode, rows);
    }

    private static string[] Names => ["fill_kernel", "copy_kernel", "add_kernel", "mul_kernel", "scale_kernel", "axpy_kernel", "fill_from_scalar_kernel"];

    [Test]
    public void ACrashedCaseFailsAndTheGroupContinuesInANewProcess()
    {
        var (exit, rows) = RunApp("crash:add_kernel");
        Assert.That(exit, Is.EqualTo(1), "a FAIL row makes the exit code non-zero");
        Assert.That(rows.Select(r => r.Split('|')[1].Trim()), Is.EqualTo(Names), "every case has its row, in order");
        for (int i = 0; i < rows.Length; i++)
        {
            Assert.That(rows[i], i == 2 ? Does.Contain("exited with code 134").And.EndWith("| FAIL |") : Does.EndWith("| ok |"));
        }
    }

    [Test]
    public void AStickyErrorEndsItsProcessAndANewOneContinues()
    {
        var (exit, rows) = RunApp("sticky:copy_kernel");
        Assert.That(exit, Is.EqualTo(1));
        Assert.That(rows.Select(r => r.Split('|')[1].Trim()), Is.EqualTo(Names));
        for (int i = 0; i < rows.Length; i++)
        {
            Assert.That(rows[i], i == 1 ? Does.Contain("injected sticky").And.EndWith("| FAIL |") : Does.EndWith("| ok |"));
        }
    }
}
