// The weight (and bias) gradient of a patchify convolution whose window covers the whole image (one output pixel per
// image: slak_nano's last downsampling layer, 124 -> 249 channels on 2 x 2 maps). There x (N, Cin, Kh, Kw) already
// is the patch matrix (N, CKK) and dy (N, Cout, 1, 1) is (N, Cout), so dW (Cout, CKK) = dy^T x x is one CpuGemm call
// on the tensors as they are (k = N = 128). The direct path's second form (CpuConv2d.FilterGrad.cs) instead gathers
// dy into (Cout, pixels) blocks, copies the patch rows and adds up one partial dW per thread group (2 x 494 KB on
// that layer) after its GEMM loops; the forward and the input gradient of such layers are plain CpuGemm calls already
// (WholeImageGemm in CpuConv2d.Direct.cs). The bias gradient sums the columns of dy in image order, 16 channels per
// vector: the same bits run after run.
using System.Runtime.Intrinsics;

namespace Slak.Backends.Cpu;

internal static partial class CpuConv2d
{
    /// <summary>True (the default, unless SLAK_CONV2D_WHOLE_IMAGE_DW=off): the weight gradient of a patchify
    /// convolution with one output pixel per image is one CpuGemm call (this file); false: the direct path's own loops.
    /// Settable so that the bench (conv-patchify --compare whole-image-dw) can time both in one process and tests can
    /// run both.</summary>
    internal static bool WholeImageFilterGemm { get; set; } =
        Environment.GetEnvironmentVariable("SLAK_CONV2D_WHOLE_IMAGE_DW") != "off";

    /// <summary>dW = dy^T x x and dbias = column sums of dy, for a window that covers the whole image (see the file
    /// header); arguments as <see cref="BackwardFilter"/>.</summary>
    private static unsafe void WholeImageBackwardFilter(Conv2dShape s, ReadOnlySpan<float> x, ReadOnlySpan<float> dy,
        Span<float> dw, Span<float> dbias)
    {
        int ckk = s.Cin * s.Kh * s.Kw;
        // dW (Cout, CKK) = A^T (Cout, N) x B (N, CKK) with A = dy (N, Cout), B = x (N, CKK).
        CpuGemm.Sgemm(true, false, s.Cout, ckk, s.N, 1f, dy, s.Cout, x, ckk, 0f, dw, ckk);
        if (dbias.Length == 0) return;
        fixed (float* pdy = dy)
        fixed (float* pdb = dbias)
        {
            int co = 0;
            for (; co + 16 <= s.Cout; co += 16)
            {
                var sum = Vector512<float>.Zero;
                for (int n = 0; n < s.N; n++) sum += Vector512.Load(pdy + (long)n * s.Cout + co);
                sum.Store(pdb + co);
            }
            for (; co < s.Cout; co++)
            {
                float sum = 0f;
                for (int n = 0; n < s.N; n++) sum += pdy[(long)n * s.Cout + co];
                pdb[co] = sum;
            }
        }
    }
}
