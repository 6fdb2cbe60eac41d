// The decomposed depthwise convolution on tiny maps: H*W a power of two of at most PixelLimit pixels (1x1, 1x2, 2x1,
// 2x2 by default: slak_nano's stages 3-4, slak_nano64's stage 4). There a call's fixed costs -- moving 16 channels
// into pixel-major columns and back, clearing padded scratch, a fork/join per call whatever the work -- cost many
// times the few in-bounds taps (bench/results/dwconv-smallmap.md: 0.18-0.33 ms per pass at 1x1). Here nothing is
// moved: in NCHW an image's C planes of H*W pixels are C*H*W consecutive floats, so a Vector512 holds 16/(H*W) whole
// planes. On such a map every output pixel p sees input pixel q through one tap at most, (q - p) + centre, so a
// plane is an (H*W) x (H*W) matrix-vector product, and with q = p XOR s (s = 0 .. H*W-1) every (p, q) pair is met:
//   y[lane] = sum over s of coef_s[lane] * x[lane XOR s]
// one in-register permute (vpermps) and one FMA per s, coef_s[lane] the weight (times mask, 0 where the tap is dead
// or outside the kernel) joining the lane's pixel p to pixel p XOR s of the same plane. On a 1x1 map this is
// y[n, c] = x[n, c] * (the branch's centre weight): one multiply per 16 channels.
// - the input gradient is the same product with the transposed matrices (coefT_s[q] = coef_s[q XOR s]), the
//   branches summed in the register;
// - the weight gradient accumulates dy[lane] * x[lane XOR s] over the batch in registers (one accumulator per s),
//   then scatters each lane to its tap; channel vectors are split between threads, each summing over all images in
//   order, so the result does not depend on the thread count, bit for bit.
// The pairs' taps depend only on (H, W, Kh, Kw) and are cached (Plan); the coefficient tables depend on the weights
// (new every step) and are gathered once per call, C*(H*W)^2 values per branch, on the calling thread. One fork/join
// per call at most, and none when the work is below a few microseconds' worth.
// SLAK_DWCONV_TINYMAP=0 (or Enabled = false) sends these maps back to the small-map path (CpuDwConvSmallMap.cs).
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Slak.Backends.Cpu;

/// <summary>Tiny-map path of <see cref="CpuDwConvDecomposed"/> (H*W a power of two, at most
/// <see cref="PixelLimit"/>): forward, input gradient and weight gradient without layout changes.</summary>
internal static unsafe class CpuDwConvTinyMap
{
    /// <summary>Default bound: maps of at most this many pixels take the path (see dwconv-small-step.md).</summary>
    internal const int MaxPixels = 4;

    /// <summary>The bound in force (tests and the benchmark raise it, up to 16).</summary>
    internal static int PixelLimit { get; set; } = MaxPixels;

    /// <summary>Switch for tests and benchmarks (SLAK_DWCONV_TINYMAP=0 turns the path off).</summary>
    internal static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("SLAK_DWCONV_TINYMAP") != "0";

    private const int L = 16;

    /// <summary>Multiply-adds below which a call runs on the calling thread (a fork/join costs more).</summary>
    private const long MinParallelMacs = 1 << 19;

    /// <summary>True when an H x W map takes this path.</summary>
    internal static bool Applies(int h, int w)
    {
        int hw = h * w;
        return Enabled && Avx512F.IsSupported && hw <= Math.Min(PixelLimit, L) && (hw & (hw - 1)) == 0;
    }

    // lane XOR s, for s = 0 .. 15.
    private static readonly int[] XorTable = BuildXor();

    private static int[] BuildXor()
    {
        var t = new int[L * L];
        for (int s = 0; s < L; s++)
            for (int l = 0; l < L; l++) t[s * L + l] = l ^ s;
        return t;
    }

    /// <summary>For a map and kernel size: the kernel tap (i*Kw + j, or -1 when outside the kernel) joining output
    /// pixel p to input pixel p XOR s, at [s*HW + p]; Flipped the tap joining input pixel q to output q XOR s.</summary>
    private sealed class Plan
    {
        public Plan(int h, int w, int kh, int kw)
        {
            int hw = h * w;
            Tap = new int[hw * hw];
            Flipped = new int[hw * hw];
            for (int s = 0; s < hw; s++)
                for (int p = 0; p < hw; p++)
                {
                    int q = p ^ s, di = q / w - p / w, dj = q % w - p % w;
                    Tap[s * hw + p] = TapAt(kh, kw, kh / 2 + di, kw / 2 + dj);
                    Flipped[s * hw + p] = TapAt(kh, kw, kh / 2 - di, kw / 2 - dj);
                }
        }

        public int[] Tap { get; }
        public int[] Flipped { get; }

        private static int TapAt(int kh, int kw, int i, int j) => i >= 0 && i < kh && j >= 0 && j < kw ? i * kw + j : -1;
    }

    private static readonly ConcurrentDictionary<(int H, int W, int Kh, int Kw), Plan> Plans = new();

    private static Plan PlanFor(int h, int w, int kh, int kw) =>
        Plans.GetOrAdd((h, w, kh, kw), k => new Plan(k.H, k.W, k.Kh, k.Kw));

    // Per calling thread, 64-byte aligned, reused across calls: the coefficient tables.
    [ThreadStatic] private static float[]? t_coef;

    private static float* Pinned(int len)
    {
        var buffer = t_coef;
        if (buffer is null || buffer.Length < len + 16)
            t_coef = buffer = GC.AllocateUninitializedArray<float>(Math.Max(len + 16, 1024), pinned: true);
        return CpuDwConvEngine.AlignUp((float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer)));
    }

    // Per calling thread: one branch's live weights, (C, Kh, Kw).
    [ThreadStatic] private static float[]? t_live;

    /// <summary>The branch's weights times mask at its live taps (those in its tap list when it has one, else all),
    /// 0 elsewhere; valid until the next call on this thread.</summary>
    private static float[] LiveWeights(int c, in CpuDwConvBranch br)
    {
        int len = c * br.Kh * br.Kw;
        var live = t_live is { } buf && buf.Length >= len ? buf : t_live = new float[len];
        var wt = br.Weight.Span;
        var mask = br.Mask.Span;
        if (br.Taps is { } taps)
        {
            Array.Clear(live, 0, len);
            foreach (int f in taps.Flat) live[f] = mask.IsEmpty ? wt[f] : wt[f] * mask[f];
        }
        else if (mask.IsEmpty) wt.CopyTo(live);
        else System.Numerics.Tensors.TensorPrimitives.Multiply(wt, mask, live.AsSpan(0, len));
        return live;
    }

    /// <summary>coef[(v*HW + s)*16 + lane] for the branch: the live weight (times mask) joining the lane's pixel to
    /// pixel lane XOR s (taps from <paramref name="taps"/>), 0 past the last channel.</summary>
    private static void Gather(int c, int hw, in CpuDwConvBranch br, int[] taps, float* coef)
    {
        int nvec = (c * hw + L - 1) / L, kk = br.Kh * br.Kw;
        var live = LiveWeights(c, br);
        for (int v = 0; v < nvec; v++)
            for (int s = 0; s < hw; s++)
            {
                float* dst = coef + ((nint)v * hw + s) * L;
                for (int l = 0; l < L; l++)
                {
                    int e = v * L + l, ch = e / hw, p = e - ch * hw, t = taps[s * hw + p];
                    dst[l] = ch < c && t >= 0 ? live[ch * kk + t] : 0f;
                }
            }
    }

    /// <summary>body(lo, hi) over images [lo, hi): once inline when <paramref name="macs"/> is small, else one
    /// fork/join over a few chunks per thread.</summary>
    private static void ForImages(int n, long macs, Action<int, int> body)
    {
        if (macs < MinParallelMacs || CpuParallel.Threads == 1)
        {
            body(0, n);
            return;
        }
        int chunks = Math.Min(n, CpuParallel.Threads * 4);
        CpuParallel.For(0, chunks, k =>
        {
            int lo = (int)((long)n * k / chunks), hi = (int)((long)n * (k + 1) / chunks);
            if (hi > lo) body(lo, hi);
        });
    }

    // A vector of count floats (the rest 0); stores only count. The last vector of an image may be partial (C*H*W
    // not a multiple of 16).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> LoadPart(float* p, int count) => count >= L ? Vector512.Load(p) : LoadTail(p, count);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StorePart(Vector512<float> v, float* p, int count)
    {
        if (count >= L) v.Store(p);
        else StoreTail(v, p, count);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Vector512<float> LoadTail(float* p, int count)
    {
        float* t = stackalloc float[L];
        new Span<float>(t, L).Clear();
        new ReadOnlySpan<float>(p, count).CopyTo(new Span<float>(t, count));
        return Vector512.Load(t);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void StoreTail(Vector512<float> v, float* p, int count)
    {
        float* t = stackalloc float[L];
        v.Store(t);
        new ReadOnlySpan<float>(t, count).CopyTo(new Span<float>(p, count));
    }

    /// <summary>ys[b] (where not 0) = branch b of x; ysum (when not 0) = their sum, added in branch order. Pointers
    /// to N*C*H*W tensors.</summary>
    internal static void Forward(int n, int c, int h, int w, IReadOnlyList<CpuDwConvBranch> branches, nint x,
        nint[] ys, nint ysum)
    {
        int hw = h * w, per = c * hw, nvec = (per + L - 1) / L, nb = branches.Count, table = nvec * hw * L;
        float* coef = Pinned(nb * table);
        for (int b = 0; b < nb; b++)
            Gather(c, hw, branches[b], PlanFor(h, w, branches[b].Kh, branches[b].Kw).Tap, coef + (nint)b * table);
        nint cp = (nint)coef;
        var outs = new nint[nb];
        for (int b = 0; b < nb && b < ys.Length; b++) outs[b] = ys[b];
        ForImages(n, (long)n * per * hw * nb, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (lo, hi) =>
        {
            Vector512<float>* perm = stackalloc Vector512<float>[L];
            fixed (int* xor = XorTable)
                for (int img = lo; img < hi; img++)
                {
                    nint off = (nint)img * per;
                    for (int v = 0; v < nvec; v++)
                    {
                        int count = Math.Min(L, per - v * L);
                        var xv = LoadPart((float*)x + off + v * L, count);
                        perm[0] = xv;
                        for (int s = 1; s < hw; s++) perm[s] = Avx512F.PermuteVar16x32(xv, Vector512.Load(xor + s * L));
                        Vector512<float> sum = default;
                        for (int b = 0; b < nb; b++)
                        {
                            float* cf = (float*)cp + (nint)b * table + (nint)v * hw * L;
                            var acc = Vector512.Load(cf) * perm[0];
                            for (int s = 1; s < hw; s++) acc = Vector512.FusedMultiplyAdd(Vector512.Load(cf + s * L), perm[s], acc);
                            if (outs[b] != 0) StorePart(acc, (float*)outs[b] + off + v * L, count);
                            sum = b == 0 ? acc : sum + acc;
                        }
                        if (ysum != 0) StorePart(sum, (float*)ysum + off + v * L, count);
                    }
                }
        });
    }

    /// <summary>dx = sum over branches of the input gradient of branch b given dys[b].</summary>
    internal static void BackwardData(int n, int c, int h, int w, IReadOnlyList<CpuDwConvBranch> branches, nint[] dys,
        nint dx)
    {
        int hw = h * w, per = c * hw, nvec = (per + L - 1) / L, nb = branches.Count, table = nvec * hw * L;
        float* coef = Pinned(nb * table);
        for (int b = 0; b < nb; b++)
            Gather(c, hw, branches[b], PlanFor(h, w, branches[b].Kh, branches[b].Kw).Flipped, coef + (nint)b * table);
        nint cp = (nint)coef;
        ForImages(n, (long)n * per * hw * nb, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (lo, hi) =>
        {
            fixed (int* xor = XorTable)
                for (int img = lo; img < hi; img++)
                {
                    nint off = (nint)img * per;
                    for (int v = 0; v < nvec; v++)
                    {
                        int count = Math.Min(L, per - v * L);
                        Vector512<float> acc = default;
                        for (int b = 0; b < nb; b++)
                        {
                            var g = LoadPart((float*)dys[b] + off + v * L, count);
                            float* cf = (float*)cp + (nint)b * table + (nint)v * hw * L;
                            acc = Vector512.FusedMultiplyAdd(Vector512.Load(cf), g, acc);
                            for (int s = 1; s < hw; s++)
                                acc = Vector512.FusedMultiplyAdd(Vector512.Load(cf + s * L),
                                    Avx512F.PermuteVar16x32(g, Vector512.Load(xor + s * L)), acc);
                        }
                        StorePart(acc, (float*)dx + off + v * L, count);
                    }
                }
        });
    }

    /// <summary>dws[b] = weight gradient of branch b; with <paramref name="skipMasked"/> taps that are not live are
    /// 0. Taps that never meet the map are 0.</summary>
    internal static void BackwardFilter(int n, int c, int h, int w, IReadOnlyList<CpuDwConvBranch> branches, nint x,
        nint[] dys, nint[] dws, bool skipMasked)
    {
        int hw = h * w, per = c * hw, nvec = (per + L - 1) / L, nb = branches.Count, table = nvec * hw * L;
        // acc[b][v][s][lane] = sum over images of dy_b[lane] * x[lane XOR s]: every (image, pixel pair) once.
        float* acc = Pinned(nb * table);
        nint ap = (nint)acc;
        int chunks = (long)n * per * hw * nb < MinParallelMacs ? 1 : Math.Min(nvec, CpuParallel.Threads * 4);
        CpuParallel.For(0, chunks, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (k) =>
        {
            Vector512<float>* sums = stackalloc Vector512<float>[L];
            int v0 = (int)((long)nvec * k / chunks), v1 = (int)((long)nvec * (k + 1) / chunks);
            fixed (int* xor = XorTable)
                for (int v = v0; v < v1; v++)
                {
                    int count = Math.Min(L, per - v * L);
                    for (int b = 0; b < nb; b++)
                    {
                        for (int s = 0; s < hw; s++) sums[s] = default;
                        for (int img = 0; img < n; img++)
                        {
                            nint at = (nint)img * per + v * L;
                            var xv = LoadPart((float*)x + at, count);
                            var g = LoadPart((float*)dys[b] + at, count);
                            sums[0] = Vector512.FusedMultiplyAdd(g, xv, sums[0]);
                            for (int s = 1; s < hw; s++)
                                sums[s] = Vector512.FusedMultiplyAdd(g,
                                    Avx512F.PermuteVar16x32(xv, Vector512.Load(xor + s * L)), sums[s]);
                        }
                        float* dst = (float*)ap + (nint)b * table + (nint)v * hw * L;
                        for (int s = 0; s < hw; s++) sums[s].Store(dst + s * L);
                    }
                }
        });
        for (int b = 0; b < nb; b++)
            Scatter(c, hw, branches[b], PlanFor(h, w, branches[b].Kh, branches[b].Kw).Tap, acc + (nint)b * table,
                (float*)dws[b], skipMasked);
    }

    // dw (C, Kh, Kw) = the sums of the pairs that meet at each tap, added in the order (s, pixel); 0 elsewhere and,
    // with skipMasked, at dead taps.
    private static void Scatter(int c, int hw, in CpuDwConvBranch br, int[] taps, float* acc, float* dw,
        bool skipMasked)
    {
        int kk = br.Kh * br.Kw;
        var all = new Span<float>(dw, c * kk);
        all.Clear();
        for (int ch = 0; ch < c; ch++)
            for (int s = 0; s < hw; s++)
                for (int p = 0; p < hw; p++)
                {
                    int t = taps[s * hw + p];
                    if (t < 0) continue;
                    int e = ch * hw + p, v = e / L;
                    all[ch * kk + t] += acc[((nint)v * hw + s) * L + (e - v * L)];
                }
        if (!skipMasked) return;
        if (br.Taps is { } live)
        {
            // Keep only the listed taps: copy them out, clear, put them back.
            var kept = new float[live.Flat.Length];
            for (int t = 0; t < kept.Length; t++) kept[t] = all[live.Flat[t]];
            all.Clear();
            for (int t = 0; t < kept.Length; t++) all[live.Flat[t]] = kept[t];
            return;
        }
        var mask = br.Mask.Span;
        if (mask.IsEmpty) return;
        for (int f = 0; f < all.Length; f++)
            if (mask[f] == 0f) all[f] = 0f;
    }
}
