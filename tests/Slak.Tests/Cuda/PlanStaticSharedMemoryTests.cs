// The static __shared__ bytes the launch plans budget (slak_plan.h) against what ptxas reports for the kernels (NVRTC
// 11.8, sm_80 and sm_90): a plan that adds dynamic shared memory up to the default limit is only right if its
// kernel's static bytes are no more than the plan assumes (the fused weight gradient's 16 B were the second launch bug
// of issue 19).
using NUnit.Framework;
using Slak.Cuda.Compilation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class PlanStaticSharedMemoryTests
{
    [TestCase(8, 0)]
    [TestCase(9, 0)]
    public void DwConvKernelsUseNoMoreStaticSharedMemoryThanTheirPlansBudget(int major, int minor)
    {
        NvrtcTestSupport.RequireNvrtc();
        var compiler = new NvrtcCompiler(KernelSources.Embedded);
        var resources = new[] { "kernels/dwconv.cu", "kernels/dwconv_fused.cu" }
            .SelectMany(f => compiler.Compile(f, new CompileOptions(major, minor) { PtxasVerbose = true }).Resources)
            .ToDictionary(r => r.Kernel, r => r.SharedBytes);

        var l = DeviceLimits.ForArchitecture(major * 10 + minor);
        int[] kh = [51, 5, 5], kw = [5, 51, 5];
        var budgets = new Dictionary<string, int>
        {
            ["dwconv_fwd_tiled_kernel"] = LaunchPlans.DwConvForward(2, 4, 56, 56, 51, 5, l).SmemStatic,
            ["dwconv_wgrad_tiled_kernel"] = LaunchPlans.DwConvWeightGrad(2, 4, 56, 56, 51, 5, l).SmemStatic,
            ["dwconv_fused_kernel"] = LaunchPlans.DwConvFused(2, 4, 56, 56, kh, kw, l).SmemStatic,
            ["dwconv_fused_wgrad_kernel"] = LaunchPlans.DwConvFusedWeightGrad(2, 4, 64, 64, kh, kw, l).SmemStatic,
        };
        foreach (var (kernel, budget) in budgets)
            Assert.That(resources[kernel], Is.LessThanOrEqualTo(budget),
                        $"sm_{major}{minor} {kernel}: ptxas reports {resources[kernel]} B of static shared memory, its " +
                        $"plan budgets {budget} B");
        Assert.That(resources["dwconv_fused_wgrad_kernel"], Is.Zero,
                    "the outer-product weight gradient has no static shared memory (its budget is the live-tap variant's)");
    }
}
