// kernel-model's view of the strip weight gradient (dwconv_strip_wgrad_kernel): its short-axis loop is split at the
// loop's first barrier into the taps (a live tap's products and store behind its branch: skippable) and the block's
// reduction (the row sum behind the t < kl branch), worked out by hand on a small listing in nvdisasm's format; and
// the modeled weight gradient at SLaK-T stage 2 issues exactly the in-bounds live products (lane efficiency: only the
// short-axis taps on padding lines and no idle lane), its time falling with the density.
using NUnit.Framework;
using Slak.Bench.KernelModel;

namespace Slak.Tests.KernelModel;

public sealed class StripWgradModelTests
{
    private const string Listing = """
        .text.dwconv_strip_wgrad_kernel:
                /*0000*/                   S2R R0, SR_TID.X ;
        .L_x_0:
                /*0010*/                   LDS.128 R4, [R1] ;
                /*0020*/                   LOP3.LUT P0, RZ, R2, 0x1, RZ, 0xc0, !PT ;
                /*0030*/              @!P0 BRA `(.L_x_1) ;
                /*0040*/                   FFMA R8, R4, R5, RZ ;
                /*0050*/                   FFMA R9, R6, R7, RZ ;
                /*0060*/                   FADD R8, R8, R9 ;
                /*0070*/                   STS [R3], R8 ;
        .L_x_1:
                /*0080*/                   LOP3.LUT P0, RZ, R2, 0x2, RZ, 0xc0, !PT ;
                /*0090*/              @!P0 BRA `(.L_x_2) ;
                /*00a0*/                   FFMA R8, R4, R6, RZ ;
                /*00b0*/                   STS [R3+0x4], R8 ;
        .L_x_2:
                /*00c0*/                   BAR.SYNC.DEFER_BLOCKING 0x0 ;
                /*00d0*/                   ISETP.GE.AND P1, PT, R0, 0x2, PT ;
                /*00e0*/               @P1 BRA `(.L_x_3) ;
                /*00f0*/                   LDS.128 R12, [R10] ;
                /*0100*/                   FADD R16, R12, R13 ;
                /*0110*/                   STG.E [R18], R16 ;
        .L_x_3:
                /*0120*/                   BAR.SYNC.DEFER_BLOCKING 0x0 ;
                /*0130*/                   IADD3 R2, R2, 0x1, RZ ;
                /*0140*/               @P2 BRA `(.L_x_0) ;
                /*0150*/                   EXIT ;
        """;

    [Test]
    public void TheShortAxisLoopSplitsAtItsFirstBarrier()
    {
        var k = SassListing.Parse(Listing).Single();
        var c = DwConvStripModel.ReadWgrad(k, 40);
        // Taps: LDS.128, two tests and two branches always; 2 + 1 FFMAs, an FADD and two stores behind the branches.
        Assert.That((c.Always, c.AlwaysFfma, c.Skippable, c.SkippableFfma), Is.EqualTo((5.0, 0.0, 6.0, 3.0)));
        // Reduction: two barriers, the test, its branch, the loop counter and the backward branch always; the row sum
        // (load, add, store) behind the t < kl branch.
        Assert.That((c.ReduceAlways, c.ReduceBody), Is.EqualTo((6.0, 3.0)));
        Assert.That(c.Registers, Is.EqualTo(40));
    }

    [Test]
    public void TheModeledWeightGradientIssuesTheInBoundsLiveProducts()
    {
        var s2 = DwConvModel.SlakTiny.Single(s => s.Name == "s2");
        // A loop that issues exactly one FFMA per in-bounds product of a line, 1 other slot per tap always: per
        // short-axis tap and warp, the products of 32 lanes' lines (2 images each) over all long-axis taps.
        DwConvStripModel.WgradLoop Code((int Kh, int Kw) b)
        {
            int kl = Math.Max(b.Kh, b.Kw);
            double products = 2.0 * DwConvModel.ValidPairs(28, kl);
            return new DwConvStripModel.WgradLoop(kl, 0, products, products, 10, 300, 128);
        }
        var dense = DwConvStripModel.WeightGrad(s2, 128, 1.0, Code);
        var sparse = DwConvStripModel.WeightGrad(s2, 128, 0.6, Code);
        // 28 x 28 maps: 28 lines of 2 images per thread group, 8 groups, 224 threads = 7 full warps; lanes lose only
        // the short-axis taps whose line lies on the padding (5 taps over 28 lines: 26.6 of 28 lines on average).
        double shortPairs = DwConvModel.ValidPairs(28, 5) / (28.0 * 5);
        Assert.That(dense.LaneEfficiency, Is.EqualTo(shortPairs).Within(1e-9));
        Assert.That(sparse.LaneEfficiency, Is.EqualTo(dense.LaneEfficiency).Within(1e-9), "masked taps issue no products");
        Assert.That(sparse.ModeledMs, Is.LessThan(dense.ModeledMs));
        Assert.That(sparse.UsefulFma, Is.EqualTo(0.6 * dense.UsefulFma).Within(1e-3));
    }
}
