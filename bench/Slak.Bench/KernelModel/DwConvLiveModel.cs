// The modeled time of the live-tap register-tiled depthwise body (cuda/kernels/dwconv_live.cu, DwConvLiveKernels) at a
// SLaK-T stage, by DwConvModel's rules (useful FMAs over in-bounds products with live taps, issued FFMA warp
// instructions from the kernel's loop structure, lane efficiency, the hot loop's FFMA share from the sm_90
// disassembly, the HBM floor). The body is launched once per branch (forward; the input gradient is the same launch
// with the flipped kernel, the same counts).
//   - Block tile 64 x 64 outputs, 4 warps; a warp is 4 thread rows x 8 threads, a thread owns 4 rows x 8 columns
//     (columns 4tx..4tx+3 and 32+4tx..32+4tx+3). Threads whose first row or column lies past the map exit.
//   - Per live tap a warp issues 32 FFMA instructions. A thread walks the long-axis taps that reach the image for
//     some of its outputs (all short-axis taps); the warp issues as many taps as its longest thread (expected live
//     taps: density x short-axis taps x the long-axis range).
//   - Beside the hot loop: staging the four column-shifted copies (per block, warps over the halo's rows, lanes over
//     its columns, StageSlots issue slots per 32 elements: an estimate, not counted in the machine code) and the
//     tap list (one ballot round per 32 taps, ListSlots per round, an estimate).
//   - HBM: x read and y written once per branch, weights and masks read per block (L2), counted once per channel.
// Ignored beyond DwConvModel's list: the occupancy (the shifted copies take ~124 KB of shared memory per block at
// 51 x 5: one block, 4 warps per SM), the barrier after staging, and shared-memory bandwidth (8 LDS.128 and one
// LDS.64 per 32 FFMAs).
using Slak.Cuda.Kernels;

namespace Slak.Bench.KernelModel;

internal static class DwConvLiveModel
{
    /// <summary>Issue slots per warp per 32 staged elements (load, bounds, four conditional stores, loop): an
    /// estimate.</summary>
    public const int StageSlots = 20;

    /// <summary>Issue slots of warp 0 per ballot round of the tap list (loads, index arithmetic, ballot, stores): an
    /// estimate.</summary>
    public const int ListSlots = 40;

    /// <summary>Forward (or input gradient) of one stage on the live-tap body at <paramref name="density"/>.</summary>
    public static DwConvModel.Estimate Forward(string pass, DwConvModel.Stage st, int n, double density, double ffmaShare)
    {
        const int tileH = DwConvLiveKernels.TileH, tileW = DwConvLiveKernels.TileW, rows = 4, warps = DwConvLiveKernels.Threads / 32;
        int h = st.H, w = st.H;
        double useful = 0, issued = 0, extra = 0;
        long maxShared = 0;
        foreach (var (kh, kw) in st.Branches)
        {
            useful += density * InBoundsPairs(h, kh) * InBoundsPairs(w, kw);
            bool tall = kh >= kw;
            int longk = tall ? kh : kw, shortk = tall ? kw : kh, pad = longk / 2, extent = tall ? h : w;
            int sh = tileH + kh - 1, sw = (tileW + kw - 1 + 3) & ~3;
            maxShared = Math.Max(maxShared, DwConvLiveKernels.SharedBytes(kh, kw));
            for (int r0 = 0; r0 < h; r0 += tileH)
                for (int q0 = 0; q0 < w; q0 += tileW)
                {
                    extra += warps * Math.Ceiling((double)sh / warps) * Math.Ceiling((sw + 3) / 32.0) * StageSlots;
                    extra += Math.Ceiling(kh * kw / 32.0) * ListSlots;
                    for (int warp = 0; warp < warps; warp++)
                    {
                        int longest = 0;
                        for (int t = 0; t < 32; t++)
                        {
                            int tx = t & 7, ty = warp * 4 + (t >> 3), orow = r0 + ty * rows, col = q0 + tx * 4;
                            if (orow >= h || col >= w) continue;
                            int pos = tall ? orow : col, span = tall ? rows : 36;
                            int lo = Math.Max(0, pad - pos - span + 1), hi = Math.Min(longk - 1, extent - 1 + pad - pos);
                            longest = Math.Max(longest, hi - lo + 1);
                        }
                        issued += density * shortk * longest * 32;
                    }
                }
        }
        double planes = (double)n * st.C;
        useful *= planes;
        issued *= planes;
        extra *= planes;
        double bytes = planes * h * w * 4.0 * 2 * st.Branches.Length + st.C * st.Branches.Sum(b => b.Kh * b.Kw) * 8.0;
        int tiles = ((h + tileH - 1) / tileH) * ((w + tileW - 1) / tileW);
        string plan = $"grid ({n * st.C}, {tiles}, 1) block ({DwConvLiveKernels.Threads}, 1, 1) smem <= {maxShared} B, one launch per branch";
        return DwConvModel.Make(pass, st.Name, useful, issued, ffmaShare, bytes, plan, extraSlots: extra);
    }

    /// <summary>The largest shared bytes of the stage's launches (for the occupancy column).</summary>
    public static long SharedBytes(DwConvModel.Stage st) => st.Branches.Max(b => DwConvLiveKernels.SharedBytes(b.Kh, b.Kw));

    private static long InBoundsPairs(int size, int k)
    {
        long s = 0;
        for (int o = 0; o < size; o++)
            for (int i = 0; i < k; i++)
            {
                int r = o + i - k / 2;
                if (r >= 0 && r < size) s++;
            }
        return s;
    }
}
