// Runs the GPU check in-process on the host emulator (cuda-emu): a tiny-scale group writes one row per case, each
// ending with ok; a case that throws ends with FAIL and its message while the next case still runs; the inference
// row compares logits with the CPU; the strip kernel's rows run it at the tiny scale; the CI subset of the
// full-scale sampled run (SLaK-T, batch 128) runs; and one kernel runs at a user's shape (--kernel, --shape,
// --branches, --density).
using NUnit.Framework;
using Slak.Backends.Cuda;
using Slak.GpuCheck;
using Slak.Tests.Cuda;

namespace Slak.Tests.GpuCheck;

[TestFixture]
[NonParallelizable]
public class GpuCheckRunTests
{
    [OneTimeSetUp]
    public void RequireEmulator()
    {
        if (!CudaBackend.IsAvailable(Device.Parse("cuda-emu"), out string why)) Assert.Ignore($"cuda-emu unavailable: {why}");
    }

    private static (int Exit, string[] Rows, string Table) Run(params string[] args)
    {
        string file = Path.Combine(NvrtcTestSupport.TempFolder(), "table.md");
        using var stdout = new StringWriter();
        int exit = CheckApp.Run([.. args, "--device", "cuda-emu", "--isolate", "none", "--repeats", "1", "--out", file], stdout);
        string table = File.ReadAllText(file);
        Assert.That(table, Is.EqualTo(stdout.ToString()), "the file holds what stdout got");
        string[] rows = table.Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal) && !l.StartsWith("| kernel |", StringComparison.Ordinal)).ToArray();
        TestContext.Out.WriteLine(table);
        return (exit, rows, table);
    }

    [Test]
    public void TinyGroupWritesOneOkRowPerCase()
    {
        var (exit, rows, table) = Run("--scale", "tiny", "--group", "elementwise,norm", "--no-e2e");
        var expected = CaseCatalog.Select(CheckOptions.Parse(["--scale", "tiny", "--group", "elementwise,norm"]));
        Assert.That(exit, Is.Zero);
        Assert.That(rows, Has.Length.EqualTo(expected.Count));
        for (int i = 0; i < rows.Length; i++)
        {
            Assert.That(rows[i], Does.StartWith($"| {expected[i].Name} |"));
            Assert.That(rows[i], Does.EndWith("| ok |"));
        }

        Assert.That(table, Does.Contain($"{rows.Length} rows: {rows.Length} ok, 0 FAIL, 0 skip"));
    }

    [Test]
    public void StripRowsRunTheStripKernelAtTheSmokeScale()
    {
        // The live-tap strip kernel's rows (forward, inference sum, input gradient at stages 1-2, density 0.6) and the
        // strip weight gradient's (stages 1-2) at the CI's tiny scale: each row is ok against the CPU, and under the
        // test library's strip instances (which the rows' smoke shapes match) the emulator really ran
        // dwconv_strip_kernel and dwconv_strip_wgrad_kernel, not the fallbacks the rows accept under the production
        // library (no specialised instances).
        long before = Slak.Cuda.Emulation.EmulatedDevice.LaunchCounts.GetValueOrDefault("dwconv_strip_kernel");
        long wgradBefore = Slak.Cuda.Emulation.EmulatedDevice.LaunchCounts.GetValueOrDefault("dwconv_strip_wgrad_kernel");
        var (exit, rows, _) = Run("--scale", "tiny", "--group", "dwconv_strip", "--no-e2e");
        Assert.That(exit, Is.Zero);
        Assert.That(rows, Has.Length.EqualTo(8), "forward, inference sum, input gradient and weight gradient at stages 1 and 2");
        foreach (string row in rows.Take(6))
            Assert.That(row, Does.StartWith("| dwconv_strip_kernel |").And.EndWith("| ok |"));
        foreach (string row in rows.Skip(6))
            Assert.That(row, Does.StartWith("| dwconv_strip_wgrad_kernel |").And.EndWith("| ok |"));
        long launched = Slak.Cuda.Emulation.EmulatedDevice.LaunchCounts.GetValueOrDefault("dwconv_strip_kernel") - before;
        Assert.That(launched, Is.GreaterThanOrEqualTo(6 * 3), "three branch launches per row at least");
        long wgradLaunched = Slak.Cuda.Emulation.EmulatedDevice.LaunchCounts.GetValueOrDefault("dwconv_strip_wgrad_kernel") - wgradBefore;
        Assert.That(wgradLaunched, Is.GreaterThanOrEqualTo(2 * 3), "three branch launches per weight-gradient row at least");
    }

    [Test]
    public void OneKernelAtAUsersShapeRunsItsRowsOnly()
    {
        // The micro-benchmark: --kernel NAME --shape N,C,H,W --branches ... --density D, compared with the CPU.
        var (exit, rows, _) = Run("--kernel", "dwconv_fused_wgrad_kernel", "--shape", "2,3,9,8", "--branches", "7x3,3x7,3x3",
                                  "--density", "0.6");
        Assert.That(exit, Is.Zero);
        Assert.That(rows, Has.Length.EqualTo(1));
        Assert.That(rows[0], Does.StartWith("| dwconv_fused_wgrad_kernel |").And.Contain("(2,3,9,8) 7x3+3x7+3x3 d=0.6").And.EndWith("| ok |"));
        (exit, rows, _) = Run("--kernel", "dwconv_fused_kernel", "--shape", "1,2,7,7", "--branches", "13x5,5x13,5x5", "--density", "1");
        Assert.That(exit, Is.Zero);
        Assert.That(rows, Has.Length.EqualTo(3), "forward, inference sum, input gradient");
        Assert.That(rows, Has.All.StartWith("| dwconv_fused_kernel |").And.All.EndWith("| ok |"));
        var bad = Assert.Throws<ArgumentException>(() => CaseCatalog.Select(CheckOptions.Parse(["--kernel", "add_kernel", "--shape", "1,1,1,1", "--branches", "3x3"])));
        Assert.That(bad!.Message, Does.Contain("add_kernel"));
        bad = Assert.Throws<ArgumentException>(() => CheckOptions.Parse(["--branches", "4x3"]));
        Assert.That(bad!.Message, Does.Contain("4x3"));
    }

    [Test]
    public void UserRowsRunTheKernelTheyNameAtAStripShape()
    {
        // At a shape the live-tap strip kernels take (17 x 19 with 13x5, 5x13, 5x5: one of the test library's strip
        // instances), --kernel dwconv_strip_kernel / dwconv_strip_wgrad_kernel run the strip kernels, and the rows
        // named after the fused kernels run the fused kernels, not the strip kernels the launchers prefer there.
        static long Count(string kernel) => Slak.Cuda.Emulation.EmulatedDevice.LaunchCounts.GetValueOrDefault(kernel);
        string[] shape = ["--shape", "2,3,17,19", "--branches", "13x5,5x13,5x5", "--density", "0.6"];
        foreach (var (kernel, rowCount) in new[]
                 {
                     ("dwconv_strip_kernel", 3), ("dwconv_strip_wgrad_kernel", 1),
                     ("dwconv_fused_kernel", 3), ("dwconv_fused_wgrad_kernel", 1),
                 })
        {
            string[] all = ["dwconv_strip_kernel", "dwconv_strip_wgrad_kernel", "dwconv_fused_kernel", "dwconv_fused_wgrad_kernel"];
            var before = all.ToDictionary(k => k, Count);
            var (exit, rows, _) = Run(["--kernel", kernel, .. shape]);
            Assert.That(exit, Is.Zero, kernel);
            Assert.That(rows, Has.Length.EqualTo(rowCount), kernel);
            Assert.That(rows, Has.All.StartWith($"| {kernel} |").And.All.EndWith("| ok |"), kernel);
            foreach (string k in all)
            {
                long launched = Count(k) - before[k];
                if (k == kernel) Assert.That(launched, Is.GreaterThanOrEqualTo(3 * rowCount), $"--kernel {kernel}: {k} launched");
                else if (k != "dwconv_fused_kernel" || kernel != "dwconv_fused_wgrad_kernel") // no fused forward in a wgrad row
                    Assert.That(launched, Is.Zero, $"--kernel {kernel}: {k} launched {launched} times");
            }
        }
    }

    [Test]
    public void AFailingCaseEndsWithItsMessageAndTheNextCaseRuns()
    {
        var options = CheckOptions.Parse(["--device", "cuda-emu", "--scale", "tiny", "--repeats", "1", "--isolate", "none"]);
        var fill = CaseCatalog.All(options).First(c => c.Name == "fill_kernel");
        var broken = new GpuCase("broken_kernel", "test", "throws", _ => throw new InvalidOperationException("deliberate failure 42"));
        var rows = new List<RowResult>();
        CheckApp.RunCases([broken, fill], options, 0, 2, (_, r) => rows.Add(r), _ => { }, child: false);
        Assert.That(rows.Select(r => r.Status), Is.EqualTo(new[] { RowStatus.Fail, RowStatus.Ok }));
        Assert.That(rows[0].Note, Does.Contain("InvalidOperationException: deliberate failure 42"));
    }

    [Test]
    public void ACaseThatDoesNotLaunchItsKernelFails()
    {
        var options = CheckOptions.Parse(["--device", "cuda-emu", "--scale", "tiny", "--repeats", "1", "--isolate", "none"]);
        var fill = CaseCatalog.All(options).First(c => c.Name == "fill_kernel");
        var misnamed = fill with { Name = "scale_kernel" };
        var rows = new List<RowResult>();
        CheckApp.RunCases([misnamed], options, 0, 1, (_, r) => rows.Add(r), _ => { }, child: false);
        Assert.That(rows[0].Status, Is.EqualTo(RowStatus.Fail));
        Assert.That(rows[0].Note, Does.Contain("did not launch scale_kernel").And.Contain("fill_kernel"));
    }

    [Test]
    public void InferenceRowComparesLogitsWithTheCpu()
    {
        var (exit, rows, _) = Run("--scale", "tiny", "--only", "e2e slak_nano infer b8");
        Assert.That(exit, Is.Zero);
        Assert.That(rows, Has.Length.EqualTo(1));
        Assert.That(rows[0], Does.Contain("img/s").And.Contain("logits of 4 images vs CPU").And.EndWith("| ok |"));
    }

    [Test]
    public void FullScaleSampledSubsetRuns()
    {
        // The CI subset of `--scale full --blocks sample` (SLaK-T, batch 128): a whole-grid row, a sampled row and an
        // in-place row, all ok; the sampled rows say so.
        var (exit, rows, table) = Run("--scale", "full", "--blocks", "sample", "--only", "softmax_xent_fwd_kernel,permute_kernel,adamw_kernel");
        Assert.That(exit, Is.Zero, "no row may FAIL");
        Assert.That(rows, Has.Length.EqualTo(3));
        string whole = rows.Single(r => r.StartsWith("| softmax_xent_fwd_kernel |", StringComparison.Ordinal));
        Assert.That(whole, Does.Contain("(128,1000)").And.EndWith("| ok |"));
        foreach (string row in rows.Where(r => r != whole))
            Assert.That(row, Does.EndWith("| ok |").And.Contain("sampled"));

        Assert.That(table, Does.Contain("scale full (SLaK-T, batch 128, 224 px), sampled blocks (seed 0x"));
    }
}
