// The CPU backend's live-tap lists are cached per mask tensor and rebuilt only when the mask's contents change
// (prune/regrow edits the same tensor in place): repeated calls reuse the list, an in-place edit is picked up on
// the next call, and the result always matches the float64 reference for the current mask.
using NUnit.Framework;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

public sealed class CpuDwConvTapCacheTests
{
    [Test]
    public void ListIsReusedUntilTheMaskChangesInPlace()
    {
        var rng = TestRandom.ForCurrentTest();
        int n = 2, c = 3, h = 6, w = 7, kh = 7, kw = 3;
        var xs = rng.NormalArray(n * c * h * w);
        var ws = rng.NormalArray(c * kh * kw);
        var ms = rng.MaskArray(ws.Length, 0.6);
        var x = Tensor.FromArray(xs, n, c, h, w);
        var wt = Tensor.FromArray(ws, c, 1, kh, kw);
        var mask = Tensor.FromArray(ms, c, 1, kh, kw);
        var rx = RefTensor.From(xs, n, c, h, w);
        var rw = RefTensor.From(ws, c, 1, kh, kw);
        void RunAndCheck(string what)
        {
            var y = Tensor.Full([n, c, h, w], float.NaN, Device.Cpu);
            x.Backend.DecomposedDwConvForward(x, [wt], [mask], [y]);
            Expect.AllClose(y, Reference.DepthwiseConv2d(rx, rw, RefTensor.From(mask.ToArray(), c, 1, kh, kw)), 1e-5, 1e-5, rng.Ctx(what));
        }
        RunAndCheck("first call");
        RunAndCheck("second call, same mask");
        Assert.That(CpuDwConvTapCache.Builds(mask), Is.EqualTo(1), rng.Ctx("the list must be built once for an unchanged mask"));
        // Regrow one pruned tap and prune one live tap, in place (as Masking does).
        var data = mask.Data;
        int pruned = Array.IndexOf(ms, 0f), live = Array.IndexOf(ms, 1f);
        if (pruned >= 0) data[pruned] = 1f;
        if (live >= 0) data[live] = 0f;
        RunAndCheck("after an in-place mask edit");
        Assert.That(CpuDwConvTapCache.Builds(mask), Is.EqualTo(2), rng.Ctx("an edited mask must rebuild the list once"));
    }
}
