// The decomposed depthwise convolution on tiny maps: H*W = 1, 2 or 4 pixels (1x1, 1x2, 2x1, 1x4, 4x1, 2x2:
// slak_nano's stages 3-4, slak_nano64's stage 4). There a call's fixed costs -- moving 16 channels into pixel-major
// columns and back, clearing padded scratch, a fork/join per call whatever the work -- cost many times the few
// in-bounds taps (bench/results/dwconv-smallmap.md: 0.18-0.33 ms per pass at 1x1). Here nothing is
// moved: in NCHW an image's C planes of H*W pixels are C*H*W consecutive floats, so a Vector512 holds 16/(H*W) whole
// planes. On such a map every output pixel p sees input pixel q through one tap at most, (q - p) + centre, so a
// plane is an (H*W) x (H*W) matrix-vector product, and with q = p XOR s (s = 0 .. H*W-1) every (p, q) pair is met:
//   y[lane] = sum over s of coef_s[lane] * x[lane XOR s]
// one in-register permute (vpermps) and one FMA per s, coef_s[lane] the weight (times mask, 0 where the tap is dead
// or outside the kernel) joining the lane's pixel p to pixel p XOR s of the same plane. On a 1x1 map this is
// y[n, c] = x[n, c] * (the branch's centre weight): one multiply per 16 channels.
// - the input gradient is the same product with the transposed matrices (coefT_s[q] = coef_s[q XOR s]), the
//   branches summed in the register;
// - the weight gradient accumulates dy[lane] * x[lane XOR s] over the batch in registers (three branches at a
//   time, so x is loaded once for them), then scatters each sum to its tap; channel vectors are split between
//   threads, each summing over all images in order, so the result does not depend on the thread count, bit for bit.
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

/// <summary>Tiny-map path of <see cref="CpuDwConvDecomposed"/> (H*W = 1, 2 or 4): forward, input gradient and weight gradient without layout changes.</summary>
internal static unsafe class CpuDwConvTinyMap
{
    /// <summary>Maps of at most this many pixels take the path. The kernels hold the pairs of a plane in registers
    /// (one permute per pair after the first); a first version that went to 16 pixels ran slak_nano's 4 x 4 stage
    /// at 0.4 times the small-map path's rate (16 permutes and FMAs per vector, most taps out of bounds).</summary>
    internal const int MaxPixels = 4;

    /// <summary>Switch for tests and benchmarks (SLAK_DWCONV_TINYMAP=0 turns the path off).</summary>
    internal static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("SLAK_DWCONV_TINYMAP") != "0";

    private const int L = 16;

    /// <summary>Multiply-adds below which a call runs on the calling thread (a fork/join costs more).</summary>
    private const long MinParallelMacs = 1 << 19;

    /// <summary>True when an H x W map takes this path.</summary>
    internal static bool Applies(int h, int w)
    {
        int hw = h * w;
        return Enabled && Avx512F.IsSupported && hw <= MaxPixels && (hw & (hw - 1)) == 0;
    }

    // lane XOR s, for s = 1 .. 3.
    private static readonly Vector512<int> Xor1 = Vector512.Create(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    private static readonly Vector512<int> Xor2 = Vector512.Create(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    private static readonly Vector512<int> Xor3 = Vector512.Create(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12);

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

    /// <summary>The weights of a branch with a tap list and no mask at its listed taps, 0 elsewhere; valid until the
    /// next call on this thread.</summary>
    private static float[] LiveWeights(int c, in CpuDwConvBranch br)
    {
        int len = c * br.Kh * br.Kw;
        var live = t_live is { } buf && buf.Length >= len ? buf : t_live = new float[len];
        Array.Clear(live, 0, len);
        var wt = br.Weight.Span;
        foreach (int f in br.Taps!.Flat) live[f] = wt[f];
        return live;
    }

    /// <summary>coef[(v*HW + s)*16 + lane] for the branch: the live weight (times mask) joining the lane's pixel to
    /// pixel lane XOR s (taps from <paramref name="taps"/>), 0 past the last channel. With a mask the weights are
    /// read as weight times mask at the few taps the map reaches (a tap list matches its mask); a tap list without a
    /// mask goes through <see cref="LiveWeights"/>.</summary>
    private static void Gather(int c, int hw, in CpuDwConvBranch br, int[] taps, float* coef)
    {
        int per = c * hw, nvec = (per + L - 1) / L, kk = br.Kh * br.Kw;
        var wt = br.Weight.Span;
        var mask = br.Mask.Span;
        if (mask.IsEmpty && br.Taps is not null) wt = LiveWeights(c, br).AsSpan(0, c * kk);
        // Lanes past the last channel: 0 (they are never stored, but must not be NaN garbage either).
        for (int e = per; e < nvec * L; e++)
            for (int s = 0; s < hw; s++) coef[((nint)(e >> 4) * hw + s) * L + (e & (L - 1))] = 0f;
        // One (pair, pixel) at a time over all channels: the tap is fixed, the weights strided by Kh*Kw.
        fixed (float* pw = wt)
        fixed (float* pm = mask)
            for (int s = 0; s < hw; s++)
                for (int p = 0; p < hw; p++)
                {
                    int t = taps[s * hw + p];
                    for (int ch = 0; ch < c; ch++)
                    {
                        int e = ch * hw + p;
                        nint f = (nint)ch * kk + t;
                        coef[((nint)(e >> 4) * hw + s) * L + (e & (L - 1))] =
                            t < 0 ? 0f : pm == null ? pw[f] : pw[f] * pm[f];
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
            Vector512<int> i1 = Xor1, i2 = Xor2, i3 = Xor3;
            for (int img = lo; img < hi; img++)
            {
                nint off = (nint)img * per;
                for (int v = 0; v < nvec; v++)
                {
                    int count = Math.Min(L, per - v * L);
                    var x0 = LoadPart((float*)x + off + v * L, count);
                    Vector512<float> x1 = default, x2 = default, x3 = default, sum = default;
                    if (hw > 1) x1 = Avx512F.PermuteVar16x32(x0, i1);
                    if (hw > 2)
                    {
                        x2 = Avx512F.PermuteVar16x32(x0, i2);
                        x3 = Avx512F.PermuteVar16x32(x0, i3);
                    }
                    for (int b = 0; b < nb; b++)
                    {
                        float* cf = (float*)cp + (nint)b * table + (nint)v * hw * L;
                        var acc = Vector512.Load(cf) * x0;
                        if (hw > 1) acc = Vector512.FusedMultiplyAdd(Vector512.Load(cf + L), x1, acc);
                        if (hw > 2)
                        {
                            acc = Vector512.FusedMultiplyAdd(Vector512.Load(cf + 2 * L), x2, acc);
                            acc = Vector512.FusedMultiplyAdd(Vector512.Load(cf + 3 * L), x3, acc);
                        }
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
            Vector512<int> i1 = Xor1, i2 = Xor2, i3 = Xor3;
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
                        if (hw > 1)
                            acc = Vector512.FusedMultiplyAdd(Vector512.Load(cf + L), Avx512F.PermuteVar16x32(g, i1), acc);
                        if (hw > 2)
                        {
                            acc = Vector512.FusedMultiplyAdd(Vector512.Load(cf + 2 * L), Avx512F.PermuteVar16x32(g, i2), acc);
                            acc = Vector512.FusedMultiplyAdd(Vector512.Load(cf + 3 * L), Avx512F.PermuteVar16x32(g, i3), acc);
                        }
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
            Vector512<int> i1 = Xor1, i2 = Xor2, i3 = Xor3;
            int v0 = (int)((long)nvec * k / chunks), v1 = (int)((long)nvec * (k + 1) / chunks);
            for (int v = v0; v < v1; v++)
            {
                int count = Math.Min(L, per - v * L);
                // Up to three branches at once in registers, so that x and its permutes are loaded once for them.
                for (int b0 = 0; b0 < nb; b0 += 3)
                {
                    int nbk = Math.Min(3, nb - b0);
                    float* g0 = (float*)dys[b0], g1 = nbk > 1 ? (float*)dys[b0 + 1] : g0, g2 = nbk > 2 ? (float*)dys[b0 + 2] : g0;
                    Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                    Vector512<float> b0v = default, b1v = default, b2v = default, b3v = default;
                    Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
                    for (int img = 0; img < n; img++)
                    {
                        nint at = (nint)img * per + v * L;
                        var x0 = LoadPart((float*)x + at, count);
                        Vector512<float> x1 = default, x2 = default, x3 = default;
                        if (hw > 1) x1 = Avx512F.PermuteVar16x32(x0, i1);
                        if (hw > 2)
                        {
                            x2 = Avx512F.PermuteVar16x32(x0, i2);
                            x3 = Avx512F.PermuteVar16x32(x0, i3);
                        }
                        Accumulate(LoadPart(g0 + at, count), hw, x0, x1, x2, x3, ref a0, ref a1, ref a2, ref a3);
                        if (nbk < 2) continue;
                        Accumulate(LoadPart(g1 + at, count), hw, x0, x1, x2, x3, ref b0v, ref b1v, ref b2v, ref b3v);
                        if (nbk < 3) continue;
                        Accumulate(LoadPart(g2 + at, count), hw, x0, x1, x2, x3, ref c0, ref c1, ref c2, ref c3);
                    }
                    Put((float*)ap + (nint)b0 * table + (nint)v * hw * L, hw, a0, a1, a2, a3);
                    if (nbk > 1) Put((float*)ap + (nint)(b0 + 1) * table + (nint)v * hw * L, hw, b0v, b1v, b2v, b3v);
                    if (nbk > 2) Put((float*)ap + (nint)(b0 + 2) * table + (nint)v * hw * L, hw, c0, c1, c2, c3);
                }
            }
        });
        for (int b = 0; b < nb; b++)
            Scatter(c, hw, branches[b], PlanFor(h, w, branches[b].Kh, branches[b].Kw).Tap, acc + (nint)b * table,
                (float*)dws[b], skipMasked);
    }

    // The sums of pairs s = 0 .. hw-1 of one vector, to dst[s*16 ..].
    /// <summary>One branch's weight-gradient sums of a vector of images: s_k += g * x_k for the map's offsets
    /// (x_k: x with its lanes XOR-permuted by k; only offsets below <paramref name="hw"/> exist).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Accumulate(Vector512<float> g, int hw, Vector512<float> x0, Vector512<float> x1,
        Vector512<float> x2, Vector512<float> x3, ref Vector512<float> s0, ref Vector512<float> s1,
        ref Vector512<float> s2, ref Vector512<float> s3)
    {
        s0 = Vector512.FusedMultiplyAdd(g, x0, s0);
        if (hw > 1) s1 = Vector512.FusedMultiplyAdd(g, x1, s1);
        if (hw > 2)
        {
            s2 = Vector512.FusedMultiplyAdd(g, x2, s2);
            s3 = Vector512.FusedMultiplyAdd(g, x3, s3);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(float* dst, int hw, Vector512<float> s0, Vector512<float> s1, Vector512<float> s2,
        Vector512<float> s3)
    {
        s0.Store(dst);
        if (hw > 1) s1.Store(dst + L);
        if (hw > 2)
        {
            s2.Store(dst + 2 * L);
            s3.Store(dst + 3 * L);
        }
    }

    // dw (C, Kh, Kw) = the sums of the pairs that meet at each tap, added in the order (s, pixel); 0 elsewhere and,
    // with skipMasked, at dead taps.
    private static void Scatter(int c, int hw, in CpuDwConvBranch br, int[] taps, float* acc, float* dw,
        bool skipMasked)
    {
        int kk = br.Kh * br.Kw;
        var all = new Span<float>(dw, c * kk);
        all.Clear();
        // With a mask, dead taps are skipped here (a tap list matches its mask); a tap list alone is applied after.
        var mask = skipMasked ? br.Mask.Span : default;
        for (int ch = 0; ch < c; ch++)
            for (int s = 0; s < hw; s++)
                for (int p = 0; p < hw; p++)
                {
                    int t = taps[s * hw + p];
                    if (t < 0 || (!mask.IsEmpty && mask[ch * kk + t] == 0f)) continue;
                    int e = ch * hw + p;
                    all[ch * kk + t] += acc[((nint)(e >> 4) * hw + s) * L + (e & (L - 1))];
                }
        if (!skipMasked || !mask.IsEmpty) return;
        if (br.Taps is { } live)
        {
            // Keep only the listed taps: copy them out, clear, put them back.
            var kept = new float[live.Flat.Length];
            for (int t = 0; t < kept.Length; t++) kept[t] = all[live.Flat[t]];
            all.Clear();
            for (int t = 0; t < kept.Length; t++) all[live.Flat[t]] = kept[t];
        }
    }
}
