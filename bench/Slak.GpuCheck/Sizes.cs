// The shapes the cases run at. "full" is SLaK-T at batch 128 on 224 px images (the target shapes: stage
// widths 124/249/499/998 = 1.3 x ConvNeXt-T truncated, maps 56/28/14/7, long kernel sides 51/49/47/13 with 5 as the
// short side and the small kernel, 1000 classes). "tiny" is the emulator smoke size: the same structure, small.
namespace Slak.GpuCheck;

/// <summary>Batch, image side, per-stage widths, map sides and long kernel sides.</summary>
internal sealed record Sizes(int B, int Image, int[] C, int[] H, int[] M, int Small, int Classes)
{
    /// <summary>SLaK-T, batch 128, 224 px (full) or the smoke size (tiny).</summary>
    public static Sizes For(bool full) => full
        ? new Sizes(128, 224, [124, 249, 499, 998], [56, 28, 14, 7], [51, 49, 47, 13], 5, 1000)
        : new Sizes(2, 56, [8, 12, 16, 24], [14, 7, 4, 2], [13, 9, 5, 3], 3, 10);

    /// <summary>The side of a square kernel whose forward tile exceeds 48 KB of shared memory (the direct
    /// fallback kernels): (32 + K - 1)^2 + K^2 floats > 12288 from K = 79 on.</summary>
    public const int DirectK = 79;

    /// <summary>Sum over output positions of the taps of a k-tap "same" filter that land inside a length-n
    /// axis.</summary>
    public static long ValidTaps(int n, int k)
    {
        long sum = 0;
        for (int r = 0; r < n; r++) sum += Math.Min(k, n + k / 2 - r) - Math.Max(0, k / 2 - r);
        return sum;
    }
}
