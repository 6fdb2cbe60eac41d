// `slak kernels --dump`: every kernel module of the embedded sources is written as a CUBIN (an ELF image for the
// asked architecture) and a PTX file, the fused depthwise module also per stage specialisation of the preset, the
// small-map modules per stage they take and the live-tap strip module per branch of stages 1-2, and index.json lists
// each module with its kernels and files; the depthwise launch plans are listed per stage at --batch; bad --arch,
// --preset and --batch values are refused with messages naming them. Needs NVRTC (installed by .ci/setup; required
// in CI).
using System.Text.Json;
using NUnit.Framework;
using Slak.Cuda.Compilation;
using Slak.Tests.Cuda;

namespace Slak.Tests.Verbs;

public sealed class KernelsCommandTests
{
    private static int Run(params string[] args) => new Slak.Cli.Commands.KernelsCommand().Build().Parse(args)
        .Invoke(new System.CommandLine.InvocationConfiguration { EnableDefaultExceptionHandler = false });

    [Test]
    public void DumpWritesCubinAndPtxOfEveryModuleAndAnIndex()
    {
        NvrtcTestSupport.RequireNvrtc();
        string dir = NvrtcTestSupport.TempFolder();
        try
        {
            var console = Console.Out;
            var output = new StringWriter();
            Console.SetOut(output);
            try { Assert.That(Run("--arch", "sm_90", "--preset", "slak_tiny", "--dump", dir, "--batch", "64"), Is.Zero); }
            finally { Console.SetOut(console); }
            // The depthwise launch plans per stage at the batch asked for (SLaK-T: 124 channels at 56 x 56, ...).
            string text = output.ToString();
            Assert.That(text, Does.Contain("launch plans, sm_90, batch 64, 224 px"));
            Assert.That(text, Does.Contain("stage 1: x (64, 124, 56, 56), branches 51x5,5x51,5x5"));
            Assert.That(text, Does.Contain("stage 4: x (64, 998, 7, 7), branches 13x5,5x13,5x5"));
            Assert.That(text, Does.Contain("dwconv_fused_wgrad_kernel (weight gradient): DwConvFusedWgrad grid (124, "));
            Assert.That(text, Does.Contain("dwconv_fused_kernel (forward, input gradient, inference sum): DwConvFused grid (7936, 2, 2)"));
            using var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "index.json")));
            var modules = index.RootElement.GetProperty("modules").EnumerateArray().ToList();
            var files = KernelSources.Embedded.KernelFiles;
            var generic = modules.Where(m => m.GetProperty("spec").GetString() == "generic").ToList();
            Assert.That(generic.Select(m => m.GetProperty("source").GetString()), Is.EquivalentTo(files), "one generic entry per kernel file");
            // The fused depthwise module once per SLaK-T stage's branches, with the launcher's defines, and no spills.
            // The small-map modules for stages 3-4 (batch 64), with the map in the spec and no spills: the forward
            // family's (dwconv_small.cu) and the weight gradient's (dwconv_small_wgrad.cu).
            foreach (var (file, kernel) in new[] { ("kernels/dwconv_small.cu", "dwconv_small_kernel"), ("kernels/dwconv_small_wgrad.cu", "dwconv_small_wgrad_kernel") })
            {
                var small = modules.Where(m => m.GetProperty("source").GetString() == file).Except(generic).ToList();
                Assert.That(small.Select(m => m.GetProperty("spec").GetString()),
                    Is.EquivalentTo(new[] { "14x14-47x5-5x47-5x5", "7x7-13x5-5x13-5x5" }), file);
                foreach (var m in small)
                {
                    var r = m.GetProperty("resources").EnumerateArray().Single(r => r.GetProperty("kernel").GetString() == kernel);
                    Assert.That(r.GetProperty("spill_bytes").GetInt32() + r.GetProperty("stack_frame_bytes").GetInt32(), Is.Zero,
                        $"{m.GetProperty("spec").GetString()}: {kernel} uses no local memory");
                }
            }
            Assert.That(text, Does.Contain("taken by dwconv_small_wgrad_kernel (small map): grid (499, 1, 1) block (128, 1, 1)"));
            // The live-tap strip kernel once per branch of stages 1-2 (the float32 launchers take it there at batch
            // 64), with DwConvStripKernels' map and kernel defines, no local memory, and its plans listed; not at
            // stages 3-4.
            var strip = modules.Where(m => m.GetProperty("source").GetString() == "kernels/dwconv_strip.cu").Except(generic).ToList();
            Assert.That(strip.Select(m => m.GetProperty("spec").GetString()),
                Is.EquivalentTo(new[] { "56x56-51x5", "56x56-5x51", "56x56-5x5", "28x28-49x5", "28x28-5x49", "28x28-5x5" }));
            foreach (var m in strip)
            {
                string spec = m.GetProperty("spec").GetString()!;
                var parts = spec.Split('-').Select(p => p.Split('x')).ToArray();
                var defines = m.GetProperty("defines").EnumerateArray().Select(d => d.GetString()).ToList();
                Assert.That(defines, Is.EquivalentTo(new[]
                {
                    $"SLAK_DWS_H={parts[0][0]}", $"SLAK_DWS_W={parts[0][1]}", $"SLAK_DW_KH0={parts[1][0]}", $"SLAK_DW_KW0={parts[1][1]}",
                }), spec);
                Assert.That(m.GetProperty("kernels").EnumerateArray().Select(k => k.GetString()), Does.Contain("dwconv_strip_kernel"), spec);
                foreach (string kernel in new[] { "dwconv_strip_kernel", "dwconv_strip_wgrad_kernel" })
                {
                    var r = m.GetProperty("resources").EnumerateArray().Single(r => r.GetProperty("kernel").GetString() == kernel);
                    Assert.That(r.GetProperty("spill_bytes").GetInt32() + r.GetProperty("stack_frame_bytes").GetInt32(), Is.Zero,
                        $"{spec}: {kernel} uses no local memory");
                }
            }
            // 56 x 56: four 56-thread line groups, one image each; 28 x 28: eight 28-thread groups, two images each.
            Assert.That(text, Does.Contain("taken by dwconv_strip_kernel (live taps, branch 51x5, forward / input gradient / inference sum): DwConvStrip grid (124, 16, 1) block (224, 1, 1)"));
            Assert.That(text, Does.Contain("taken by dwconv_strip_kernel (live taps, branch 5x49, forward / input gradient / inference sum): DwConvStrip grid (249, 4, 1) block (224, 1, 1)"));
            Assert.That(text, Does.Not.Contain("branch 47x5, forward").And.Not.Contain("branch 13x5, forward"), "no strip plan at stages 3-4");
            Assert.That(text, Does.Contain("taken by dwconv_strip_wgrad_kernel (live taps, branch 49x5, weight gradient): DwConvStrip grid (249, 4, 1) block (224, 1, 1)"));
            Assert.That(text, Does.Not.Contain("branch 47x5, weight gradient"), "no strip weight-gradient plan at stages 3-4");
            var specialised = modules.Except(generic).Where(m => m.GetProperty("source").GetString() == "kernels/dwconv_fused.cu").ToList();
            Assert.That(specialised.Select(m => m.GetProperty("spec").GetString()),
                Is.EquivalentTo(new[] { "51x5-5x51-5x5", "49x5-5x49-5x5", "47x5-5x47-5x5", "13x5-5x13-5x5" }));
            foreach (var m in specialised)
            {
                string spec = m.GetProperty("spec").GetString()!;
                Assert.That(m.GetProperty("source").GetString(), Is.EqualTo("kernels/dwconv_fused.cu"), spec);
                var defines = m.GetProperty("defines").EnumerateArray().Select(d => d.GetString()).ToList();
                Assert.That(defines, Does.Contain($"SLAK_DW_KH0={spec.Split('x')[0]}").And.Contain("SLAK_DW_KW2=5"), spec);
                var fused = m.GetProperty("resources").EnumerateArray().Single(r => r.GetProperty("kernel").GetString() == "dwconv_fused_kernel");
                Assert.That(fused.GetProperty("spill_bytes").GetInt32() + fused.GetProperty("stack_frame_bytes").GetInt32(), Is.Zero,
                    $"{spec}: dwconv_fused_kernel uses no local memory");
            }
            foreach (var m in modules)
            {
                string module = m.GetProperty("module").GetString()!;
                var cubin = File.ReadAllBytes(Path.Combine(dir, m.GetProperty("cubin").GetString()!));
                Assert.That(cubin.Take(4), Is.EqualTo(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F' }), $"{module}: CUBIN is an ELF image");
                string ptx = File.ReadAllText(Path.Combine(dir, m.GetProperty("ptx").GetString()!));
                Assert.That(ptx, Does.Contain(".target sm_90"), $"{module}: PTX for sm_90");
                var kernels = m.GetProperty("kernels").EnumerateArray().Select(k => k.GetString()!).ToList();
                Assert.That(kernels, Is.Not.Empty, $"{module} lists its kernels");
                foreach (var k in kernels) Assert.That(ptx, Does.Contain($".entry {k}("), $"{module}: PTX holds {k}");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void BadArchitectureAndPresetAreRefusedByName()
    {
        var arch = Assert.Throws<ArgumentException>(() => Run("--arch", "ampere"));
        Assert.That(arch!.Message, Does.Contain("--arch").And.Contain("ampere"));
        var preset = Assert.Throws<ArgumentException>(() => Run("--preset", "slak_gigantic"));
        Assert.That(preset!.Message, Does.Contain("slak_gigantic"));
        var batch = Assert.Throws<ArgumentException>(() => Run("--batch", "0"));
        Assert.That(batch!.Message, Does.Contain("--batch").And.Contain("0"));
    }
}
