// The per-(Kh, Kw) specialisation of dwconv_fused_kernel: the defines the launcher passes for a set of branches, and
// the specialised modules compiled by NVRTC (slak_nano's branches, a dense M x M + N x N pair, and the live-tap-list
// body kept as the benchmark variant) without local memory, with the kernel-cache key telling the
// specialisations apart; and the specialised modules executed: the emulator test library holds instances of
// dwconv_fused.cu compiled with the defines of three breaker shapes' branches (CMakeLists.txt), which the launchers
// reach through IGpuDevice.GetKernel(name, specialization), checked here against the CPU backend at every density.
using NUnit.Framework;
using Slak.Cuda.Compilation;
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using Slak.Tests.Support;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class DwConvFusedSpecializationTests
{
    private static DwConvFusedBranch[] Branches(params (int Kh, int Kw)[] ks) =>
        [.. ks.Select(k => new DwConvFusedBranch(DevicePtr.Null, DevicePtr.Null, k.Kh, k.Kw))];

    [Test]
    public void LauncherDefinesNameEveryBranchsKernelSize()
    {
        Assert.That(DwConvFusedKernels.Specialization(Branches((51, 5), (5, 51), (5, 5))),
            Is.EqualTo(new[] { "SLAK_DW_KH0=51", "SLAK_DW_KW0=5", "SLAK_DW_KH1=5", "SLAK_DW_KW1=51", "SLAK_DW_KH2=5", "SLAK_DW_KW2=5" }));
        Assert.That(DwConvFusedKernels.Specialization(Branches((7, 7), (3, 3))),
            Is.EqualTo(new[] { "SLAK_DW_KH0=7", "SLAK_DW_KW0=7", "SLAK_DW_KH1=3", "SLAK_DW_KW1=3" }));
        Assert.That(DwConvFusedKernels.Specialization(Branches((13, 5), (5, 13), (5, 5))),
            Is.Not.EqualTo(DwConvFusedKernels.Specialization(Branches((51, 5), (5, 51), (5, 5)))));
    }

    [Test]
    public void SpecialisedModulesCompileWithoutLocalMemoryAndHaveTheirOwnCacheKeys()
    {
        NvrtcTestSupport.RequireNvrtc();
        var sources = KernelSources.Embedded;
        var compiler = new NvrtcCompiler(sources);
        const string file = "kernels/dwconv_fused.cu";
        // SLaK-T's stage specialisations are compiled for sm_90 (and checked for spills) by KernelsCommandTests; its
        // stage-4 specialisation is the one that spilled on sm_80 (4 bytes, before the branch loop stopped unrolling).
        (int Major, IReadOnlyList<string> Defines)[] specs =
        [
            (9, DwConvFusedKernels.Specialization(Branches((31, 31), (5, 5)))),
            (9, DwConvFusedKernels.Specialization(Branches((15, 3), (3, 15), (3, 3)))),
            (9, ["SLAK_DW_FUSED_TAPLIST=1"]),
            (9, ["SLAK_DW_WGRAD_TAPS=1"]),
            (8, ["SLAK_DW_WGRAD_TRIM=0"]), // the weight gradient's whole strips (kernel-model --variant fullstrips)
            (8, DwConvFusedKernels.Specialization(Branches((13, 5), (5, 13), (5, 5)))),
        ];
        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (major, defines) in specs)
        {
            var options = new CompileOptions(major, 0) { PtxasVerbose = true, Defines = defines };
            var module = compiler.Compile(file, options);
            string what = $"sm_{major}0 " + string.Join(' ', defines);
            foreach (string kernel in new[] { "dwconv_fused_kernel", "dwconv_fused_wgrad_kernel" })
            {
                var r = module.Resources.Single(r => r.Kernel == kernel);
                Assert.That(r.UsesLocalMemory, Is.False,
                    $"{what}: {kernel} spills or has a stack frame ({r.SpillStoreBytes} B spill stores, " +
                    $"{r.StackFrameBytes} B stack, {r.Registers} registers)");
            }
            Assert.That(keys.Add(KernelCache.Key(sources, file, compiler.Arguments(options), compiler.Version, $"sm_{major}0")),
                Is.True, $"{what}: the cache key must differ from the other specialisations'");
        }
    }

    // Breaker shapes of DwConvDecomposedOpTests whose branches the emulator test library has specialised instances of.
    [TestCase(1, 2, 7, 7, "13x5,5x13,5x5")]
    [TestCase(2, 1, 6, 9, "7x3,3x7,3x3")]
    [TestCase(1, 2, 9, 8, "7x7,3x3")]
    public void TheEmulatorRunsTheSpecialisedModulesAndTheyMatchTheCpuBackend(int n, int c, int h, int w, string branchList)
    {
        var emu = TestDevices.Open("cuda-emu");
        var rng = TestRandom.ForCurrentTest();
        var ks = branchList.Split(',').Select(s => s.Split('x')).Select(p => (Kh: int.Parse(p[0]), Kw: int.Parse(p[1]))).ToArray();
        int nb = ks.Length;
        string instance = EmulatedDevice.InstanceName("dwconv_fused_kernel", DwConvFusedKernels.Specialization(Branches(ks)));
        Assert.That(EmulatedDevice.RegisteredKernels, Does.Contain(instance), "the test library's specialised instance");
        foreach (double density in new[] { 1.0, 0.6, 0.1, 0.0 })
        {
            var x = rng.NormalArray(n * c * h * w);
            var wts = ks.Select(k => rng.NormalArray(c * k.Kh * k.Kw, 1 / Math.Sqrt(k.Kh * k.Kw))).ToArray();
            var masks = ks.Select(k => rng.MaskArray(c * k.Kh * k.Kw, density)).ToArray();
            var dys = ks.Select(_ => rng.NormalArray(n * c * h * w)).ToArray();
            DwConvPasses.Result Run(Device d) => DwConvPasses.Run(d, n, c, h, w, ks, x, wts, masks, dys);
            long before = EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(instance);
            var got = Run(emu);
            Assert.That(EmulatedDevice.InstanceLaunchCounts.GetValueOrDefault(instance) - before, Is.EqualTo(3),
                        $"{branchList} density {density}: the forward, the inference sum and the input gradient run {instance}");
            var want = Run(Device.Cpu);
            string what = $"x ({n},{c},{h},{w}) branches {branchList} density {density}, specialised module on cuda-emu vs cpu";
            static double[] D(float[] v) => [.. v.Select(f => (double)f)];
            for (int b = 0; b < nb; b++) Expect.AllClose(got.Ys[b], D(want.Ys[b]), 1e-5, 1e-5, rng.Ctx($"forward branch {b}, {what}"));
            Expect.AllClose(got.Sum, D(want.Sum), 1e-5, 1e-5, rng.Ctx($"inference sum, {what}"));
            Expect.AllClose(got.Dx, D(want.Dx), 1e-5, 1e-5, rng.Ctx($"input gradient, {what}"));
        }
    }
}
