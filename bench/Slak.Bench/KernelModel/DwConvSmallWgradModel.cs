// The modeled time of the small-map weight gradient (cuda/kernels/dwconv_small_wgrad.cu) at a SLaK-T stage, by the
// same rules as DwConvModel (useful FMAs over in-bounds products at the density, issued FFMA warp instructions from
// the kernel's loop structure, lane efficiency, the hot loop's FFMA share, the HBM floor), for the stages where
// DwConvSmallWgradKernels.Applies (the launcher's predicate) selects it.
//   - Each branch is read in line form (tall branches by columns): R lines of L values, KS taps across, KL along;
//     lanes are (image slot, line), 32 / R image slots per warp, 4 warps per block, 8 image steps per warp per chunk.
//   - Per group of G line offsets and per image step a warp issues, for each offset di that some lane's line reaches
//     (every |di| < R does), sum over in-bounds dj of (L - |dj|) FFMAs: masked taps are computed (the mask only zeroes
//     the written partial), lanes whose line p + di leaves the map and lanes past the warp's slots idle.
//   - HBM: x and every dy read once, the partials written and read back once, masks read, dw written.
// Ignored beyond DwConvModel's list: the L1/L2 re-reads of x and dy per branch and per group (the kernel loads lines
// straight from global memory), the transposing warp reduction (about NVP shuffles per group and warp) and the
// cross-warp sum.
using System.Globalization;
using Slak.Cuda.Kernels;

namespace Slak.Bench.KernelModel;

internal static class DwConvSmallWgradModel
{
    /// <summary>Whether the launcher sends this stage's weight gradient to the small-map kernel (its
    /// predicate).</summary>
    public static bool Applies(DwConvModel.Stage st, int n) => DwConvSmallWgradKernels.Applies(n, st.H, st.H, st.Branches);

    /// <summary>The NVRTC definitions of the stage's instance (the launcher's).</summary>
    public static IReadOnlyList<string> Defines(DwConvModel.Stage st) =>
        DwConvSmallWgradKernels.Specialization(st.H, st.H, st.Branches);

    /// <summary>The weight gradient of one stage on the small-map kernel.</summary>
    public static DwConvModel.Estimate WeightGrad(DwConvModel.Stage st, int n, double density, double ffmaShare)
    {
        int h = st.H, w = st.H;
        int per = DwConvSmallWgradKernels.ImagesPerChunk(h, w), chunks = DwConvSmallWgradKernels.Chunks(n, h, w);
        const int warps = DwConvSmallWgradKernels.Threads / 32;
        double useful = 0, issuedPerChannel = 0;
        foreach (var (kh, kw) in st.Branches)
        {
            useful += density * InBoundsPairs(h, kh) * InBoundsPairs(w, kw);
            bool cols = kh > kw;
            int r = cols ? w : h, l = cols ? h : w, ks = cols ? kw : kh, kl = cols ? kh : kw;
            int slots = 32 / r;
            int dj = Math.Min(kl / 2, l - 1), di = Math.Min(ks / 2, r - 1);
            double perOffset = 0;
            for (int j = -dj; j <= dj; j++) perOffset += l - Math.Abs(j);
            // Every offset di in [-DI, DI] is reached by some lane's line (|di| < R), so the warp issues it.
            double perStep = (2 * di + 1) * perOffset;
            long steps = 0;
            for (int ch = 0; ch < chunks; ch++)
            {
                int img0 = ch * per, img1 = Math.Min(n, img0 + per);
                for (int wp = 0; wp < warps; wp++)
                    for (int b = img0 + wp * slots; b < img1; b += warps * slots) steps++;
            }
            issuedPerChannel += steps * perStep;
        }
        useful *= (double)n * st.C;
        double issued = issuedPerChannel * st.C;
        int taps = st.Branches.Sum(b => b.Kh * b.Kw);
        long workspace = DwConvSmallWgradKernels.WorkspaceBytes(n, st.C, h, w, st.Branches);
        double bytes = (double)n * st.C * h * w * 4.0 * (1 + st.Branches.Length) + 2.0 * workspace + st.C * taps * 8.0;
        string plan = string.Create(CultureInfo.InvariantCulture,
            $"DwConvSmallWgrad grid ({st.C}, {chunks}, 1) block ({DwConvSmallWgradKernels.Threads}, 1, 1) smem 0+{warps * taps * 4} B, {chunks} chunks of {per}, instance {string.Join(' ', Defines(st))}");
        return DwConvModel.Make("wgrad", st.Name, useful, issued, ffmaShare, bytes, plan);
    }

    /// <summary>Sum over outputs along an axis of size <paramref name="size"/> of the taps of a
    /// <paramref name="k"/>-tap axis that land inside it.</summary>
    private static long InBoundsPairs(int size, int k)
    {
        long s = 0;
        for (int o = 0; o < size; o++)
            for (int i = 0; i < k; i++)
            {
                int at = o + i - k / 2;
                if (at >= 0 && at < size) s++;
            }
        return s;
    }
}
