// kernel-model's view of the small-map depthwise kernel (dwconv_small.cu): a fully unrolled body has no backward
// branch around its FFMAs, so SassListing's hot region falls back to the straight-line block with the most FFMAs
// (worked out by hand on a small listing in nvdisasm's format), and the modeled lane efficiency of the small kernel
// is the density times the share of launched lanes that hold an image (batch 128: every lane; 40 images in blocks of
// 64: 40 / 64), its issued FFMAs exactly the in-bounds products.
using NUnit.Framework;
using Slak.Bench.KernelModel;

namespace Slak.Tests.KernelModel;

public sealed class SmallKernelModelTests
{
    private const string Listing = """
        .text.small_kernel:
                /*0000*/                   S2R R0, SR_TID.X ;
        .L_x_0:
                /*0010*/                   STS [R2], R3 ;
                /*0020*/               @P0 BRA `(.L_x_0) ;
                /*0030*/                   BAR.SYNC.DEFER_BLOCKING 0x0 ;
                /*0040*/                   ISETP.NE.AND P1, PT, R0, RZ, PT ;
                /*0050*/               @P1 BRA `(.L_x_1) ;
                /*0060*/                   LDS R4, [R1] ;
                /*0070*/                   LDS R5, [R1+0x4] ;
                /*0080*/                   FFMA R6, R4, R5, RZ ;
                /*0090*/                   FFMA R7, R4, R5, R6 ;
                /*00a0*/                   FFMA R8, R4, R5, R7 ;
                /*00b0*/                   STS [R1], R8 ;
                /*00c0*/                   BRA `(.L_x_2) ;
        .L_x_1:
                /*00d0*/                   LDS R4, [R1] ;
                /*00e0*/                   FFMA R6, R4, R4, RZ ;
        .L_x_2:
                /*00f0*/                   EXIT ;
        """;

    [Test]
    public void AStraightLineBodyIsTheHotRegionWhenNoLoopHoldsAnFfma()
    {
        var k = SassListing.Parse(Listing).Single();
        Assert.That(k.Loops, Has.Count.EqualTo(1), "the staging loop");
        Assert.That(k.HotLoop, Is.Null, "no loop holds an FFMA");
        Assert.That(k.BasicBlocks().Select(b => (b.Start, b.End)),
                    Is.EqualTo(new[] { (0x00, 0x00), (0x10, 0x20), (0x30, 0x50), (0x60, 0xc0), (0xd0, 0xe0), (0xf0, 0xf0) }));
        var hot = k.HotRegion!.Value;
        Assert.That(hot.Loop, Is.False);
        Assert.That((hot.Range.Start, hot.Range.End), Is.EqualTo((0x60, 0xc0)), "three FFMAs beat one");
        var mix = k.Mix(hot.Range);
        Assert.That((mix.Instructions, mix.Ffma, mix.SharedLoads), Is.EqualTo((7, 3, 2)));
        Assert.That(mix.FfmaShare, Is.EqualTo(3 / 7.0).Within(1e-12));
    }

    [Test]
    public void TheSmallKernelIssuesExactlyTheInBoundsProducts()
    {
        var s4 = DwConvModel.SlakTiny.Single(s => s.Name == "s4");
        // 7 x 7, 13 x 5: 7 x 7 row pairs in bounds (13 >= 2 x 7 - 1) x (7 x 5 - 2 x 3) column pairs.
        var e = DwConvModel.SmallForward("fwd", s4, 128, 1.0, 0.5)!;
        double perPlane = 2 * (49.0 * 29) + 29.0 * 29;
        Assert.That(e.UsefulFma, Is.EqualTo(perPlane * 128 * s4.C).Within(1e-6));
        Assert.That(e.LaneEfficiency, Is.EqualTo(1.0).Within(1e-12), "batch 128: every lane holds an image");
        Assert.That(DwConvModel.SmallForward("fwd", s4, 128, 0.6, 0.5)!.LaneEfficiency, Is.EqualTo(0.6).Within(1e-12));
        Assert.That(DwConvModel.SmallForward("fwd", s4, 40, 1.0, 0.5)!.LaneEfficiency, Is.EqualTo(40 / 64.0).Within(1e-12),
                    "40 images: one block of 64 threads");
        Assert.That(DwConvModel.SmallForward("fwd", s4, 8, 1.0, 0.5), Is.Null, "8 images: the fused kernel's plan");
        Assert.That(DwConvModel.SmallForward("fwd", DwConvModel.SlakTiny[0], 128, 1.0, 0.5), Is.Null, "56 x 56: fused");
    }
}
