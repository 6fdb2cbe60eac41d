// The GPU check's patchify rows (Cases.Patchify.cs) and the direct conv2d.cu rows of the same shapes, run in-process
// on cuda-emu at the tiny scale: every row compares its outputs with the CPU backend and verifies that its kernel
// launched, so the conv2d rows show the direct kernels still run with the patchify path disabled for them.
using NUnit.Framework;
using Slak.Backends.Cuda;
using Slak.GpuCheck;
using Slak.Tests.Cuda;

namespace Slak.Tests.GpuCheck;

[TestFixture]
[NonParallelizable]
public class GpuCheckPatchifyTests
{
    [Test]
    public void PatchifyAndDirectConvRowsAreOkOnTheEmulator()
    {
        if (!CudaBackend.IsAvailable(Device.Parse("cuda-emu"), out string why)) Assert.Ignore($"cuda-emu unavailable: {why}");
        string file = Path.Combine(NvrtcTestSupport.TempFolder(), "patchify.md");
        using var stdout = new StringWriter();
        int exit = CheckApp.Run(["--scale", "tiny", "--group", "conv2d,patchify", "--no-e2e", "--device", "cuda-emu",
                                 "--isolate", "none", "--repeats", "1", "--out", file], stdout);
        string table = File.ReadAllText(file);
        TestContext.Out.WriteLine(table);
        string[] rows = table.Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal) && !l.StartsWith("| kernel |", StringComparison.Ordinal)).ToArray();
        Assert.That(exit, Is.Zero, table);
        Assert.That(rows.Count(r => r.StartsWith("| patchify_kernel |", StringComparison.Ordinal)), Is.EqualTo(3), "stem forward, both weight gradients");
        Assert.That(rows.Count(r => r.StartsWith("| unpatchify_kernel |", StringComparison.Ordinal)), Is.EqualTo(2), "both input gradients");
        Assert.That(rows.Count(r => r.StartsWith("| patchify_weight_bias_kernel |", StringComparison.Ordinal)), Is.EqualTo(1), "downsampling forward");
        Assert.That(rows.Count(r => r.StartsWith("| conv2d_", StringComparison.Ordinal)), Is.EqualTo(4), "the direct rows");
        Assert.That(rows, Has.All.EndWith("| ok |"));
    }
}
