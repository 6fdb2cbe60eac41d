// The SASS reader of `kernel-model` on a small listing in nvdisasm's format: kernels split at their .text sections,
// labels resolved, loops found from backward branches (BRA.DIV, a divergence check, is not a loop), the innermost
// loop with the most FFMAs chosen as the hot loop, and its instruction mix counted.
using NUnit.Framework;
using Slak.Bench.KernelModel;

namespace Slak.Tests.KernelModel;

public sealed class SassListingTests
{
    private const string Listing = """
        //--------------------- .text.conv_kernel --------------------------
        	.section	.text.conv_kernel,"ax",@progbits
        conv_kernel:
        .text.conv_kernel:
                /*0000*/                   LDC R1, c[0x0][0x28] ;
                /*0010*/                   S2R R0, SR_TID.X ;
        .L_x_0:
                /*0020*/                   LDG.E R2, [R4.64] ;
                /*0030*/                   BRA.DIV UR4, `(.L_x_9) ;
        .L_x_1:
                /*0040*/                   LDS R3, [R6] ;
                /*0050*/                   FFMA R8, R2, R3, R8 ;
                /*0060*/                   FFMA R9, R2, R3, R9 ;
                /*0070*/                   NOP ;
                /*0080*/                   FFMA R10, R2, R3, R10 ;
                /*0090*/               @P0 BRA `(.L_x_1) ;
                /*00a0*/                   IADD3 R4, R4, 0x4, RZ ;
                /*00b0*/              @!P1 BRA `(.L_x_0) ;
        .L_x_2:
                /*00c0*/                   FFMA R1, R2, R3, R1 ;
                /*00d0*/               @P2 BRA `(.L_x_2) ;
                /*00e0*/                   STG.E [R4.64], R8 ;
                /*00f0*/                   EXIT ;
        .L_x_9:
                /*0100*/                   BRA `(.L_x_9) ;
        //--------------------- .text.copy_kernel --------------------------
        .text.copy_kernel:
                /*0000*/                   LDG.E R2, [R4.64] ;
                /*0010*/                   STG.E [R6.64], R2 ;
                /*0020*/                   EXIT ;
        """;

    [Test]
    public void LoopsHotLoopAndInstructionMixAreRead()
    {
        var kernels = SassListing.Parse(Listing);
        Assert.That(kernels.Select(k => k.Name), Is.EqualTo(new[] { "conv_kernel", "copy_kernel" }));
        var conv = kernels[0];
        // Loops: [0x20, 0xb0] (outer), [0x40, 0x90] (inner), [0xc0, 0xd0], and the self-loop at 0x100.
        Assert.That(conv.Loops.Select(l => (l.Start, l.End)), Is.EquivalentTo(new[] { (0x20, 0xb0), (0x40, 0x90), (0xc0, 0xd0), (0x100, 0x100) }));
        Assert.That(conv.InnermostLoops.Select(l => l.Start), Is.EquivalentTo(new[] { 0x40, 0xc0, 0x100 }));
        var hot = conv.HotLoop!;
        Assert.That((hot.Start, hot.End), Is.EqualTo((0x40, 0x90)), "the innermost loop with the most FFMAs");
        var mix = conv.Mix(hot);
        Assert.That(mix.Instructions, Is.EqualTo(5), "LDS, 3 FFMA, BRA (the NOP not counted)");
        Assert.That(mix.Ffma, Is.EqualTo(3));
        Assert.That(mix.FfmaShare, Is.EqualTo(0.6).Within(1e-12));
        Assert.That(mix.SharedLoadsPerFfma, Is.EqualTo(1 / 3.0).Within(1e-12));
        Assert.That(mix.GlobalLoads, Is.Zero);
        Assert.That(kernels[1].HotLoop, Is.Null, "a kernel without a loop has no hot loop");
        Assert.That(kernels[1].Mix().GlobalLoads, Is.EqualTo(1));
    }
}
