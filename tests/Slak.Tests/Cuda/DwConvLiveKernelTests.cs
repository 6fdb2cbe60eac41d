// The live-tap register-tiled depthwise kernel (cuda/kernels/dwconv_live.cu, DwConvLiveKernels): forward and input
// gradient (the flipped kernel) on the emulator with every sanitizer on, against a float64 reference at breaker shapes
// (C = 1, H != W, H = W = 1, kernels larger than the image, several tiles along either axis, tall and wide kernels, N
// in {3, 5, 7}) and densities 1 / 0.6 / 0.1 / 0 (plus no mask), two runs bit-identical; a kernel whose staged copies
// exceed the shared memory is refused by name; NVRTC compiles it for sm_80 and sm_90 without local memory.
using NUnit.Framework;
using Slak.Cuda.Compilation;
using Slak.Cuda.Emulation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using Slak.Tests.Support;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class DwConvLiveKernelTests
{
    [TestCase(3, 1, 1, 1, 3, 3)]      // H = W = 1
    [TestCase(5, 2, 5, 9, 11, 5)]     // a kernel taller than the image, H != W
    [TestCase(1, 2, 70, 9, 13, 5)]    // two tile rows, tall kernel
    [TestCase(1, 1, 9, 70, 5, 13)]    // two tile columns, wide kernel (taps sorted by column)
    [TestCase(7, 1, 6, 6, 5, 5)]      // square kernel, N = 7
    [TestCase(1, 1, 13, 11, 101, 5)]  // M = 101: far past the image on both ends
    [KernelParity(DwConvLiveKernels.KernelName)]
    public void MatchesFloat64ReferenceAtEveryDensityUnderTheSanitizers(int n, int c, int h, int w, int kh, int kw)
    {
        var rng = TestRandom.ForCurrentTest();
        using var dev = EmulatedDevice.Open();
        dev.Checks = EmulatorChecks.All;
        long count = (long)n * c * h * w;
        int taps = c * kh * kw;
        var x = rng.NormalArray(count);
        var wt = rng.NormalArray(taps, 1 / Math.Sqrt(kh * kw));
        var xd = EmulatorTestSupport.Upload<float>(dev, x);
        var wd = EmulatorTestSupport.Upload<float>(dev, wt);
        foreach (double density in new[] { 1.0, 0.6, 0.1, 0.0, -1.0 })
        {
            bool masked = density >= 0;
            var mask = masked ? rng.MaskArray(taps, density) : null;
            var md = mask != null ? EmulatorTestSupport.Upload<float>(dev, mask) : DevicePtr.Null;
            foreach (bool flip in new[] { false, true })
            {
                float[] Run()
                {
                    var y = EmulatorTestSupport.Poisoned(dev, count);
                    DwConvLiveKernels.Forward(dev, y, xd, wd, md, n, c, h, w, kh, kw, flip);
                    var got = EmulatorTestSupport.Download<float>(dev, y, (int)count);
                    dev.Free(y);
                    return got;
                }
                var first = Run();
                var second = Run();
                string what = $"x ({n},{c},{h},{w}) kernel {kh}x{kw} density {(masked ? density : 1)} masked {masked} flip {flip}";
                EmulatorTestSupport.AssertClose(first, Reference(x, wt, mask, n, c, h, w, kh, kw, flip), 1e-5, 1e-5,
                                                rng.Ctx(what));
                Assert.That(second.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(first.Select(BitConverter.SingleToInt32Bits)),
                            rng.Ctx($"bit-identical in two runs, {what}"));
            }
            if (!md.IsNull) dev.Free(md);
        }
        dev.Free(xd);
        dev.Free(wd);
    }

    [Test]
    public void AKernelWhoseCopiesExceedSharedMemoryIsRefused()
    {
        using var dev = EmulatedDevice.Open();
        var ex = Assert.Throws<ArgumentException>(() =>
            DwConvLiveKernels.Forward(dev, DevicePtr.Null, DevicePtr.Null, DevicePtr.Null, DevicePtr.Null, 1, 1, 8, 8, 151, 5));
        Assert.That(ex!.Message, Does.Contain("151x5").And.Contain("shared memory"));
    }

    [Test]
    public void CompilesWithoutLocalMemory()
    {
        NvrtcTestSupport.RequireNvrtc();
        var compiler = new NvrtcCompiler(KernelSources.Embedded);
        foreach (int major in new[] { 8, 9 })
        {
            var module = compiler.Compile("kernels/dwconv_live.cu", new CompileOptions(major, 0) { PtxasVerbose = true });
            var r = module.Resources.Single(r => r.Kernel == DwConvLiveKernels.KernelName);
            TestContext.Out.WriteLine($"sm_{major}0: {r.Registers} registers");
            Assert.That(r.UsesLocalMemory, Is.False,
                $"sm_{major}0: spills or has a stack frame ({r.SpillStoreBytes} B spill stores, {r.StackFrameBytes} B stack)");
        }
    }

    // y[n, c, r, q] = sum over (i, j) of w'[c, i, j] * m'[c, i, j] * x[n, c, r + i - kh/2, q + j - kw/2] in float64,
    // w' (and m') flipped in both axes when flip is set.
    private static double[] Reference(float[] x, float[] wt, float[]? mask, int n, int c, int h, int w, int kh, int kw,
                                      bool flip)
    {
        var y = new double[x.Length];
        for (int img = 0; img < n; img++)
            for (int ch = 0; ch < c; ch++)
            {
                long plane = ((long)img * c + ch) * h * w;
                for (int r = 0; r < h; r++)
                    for (int q = 0; q < w; q++)
                    {
                        double s = 0;
                        for (int i = 0; i < kh; i++)
                            for (int j = 0; j < kw; j++)
                            {
                                int gr = r + i - kh / 2, gc = q + j - kw / 2;
                                if (gr < 0 || gr >= h || gc < 0 || gc >= w) continue;
                                int src = ch * kh * kw + (flip ? (kh - 1 - i) * kw + (kw - 1 - j) : i * kw + j);
                                double m = mask != null ? mask[src] : 1;
                                s += (double)wt[src] * m * x[plane + (long)gr * w + gc];
                            }
                        y[plane + (long)r * w + q] = s;
                    }
            }
        return y;
    }
}
