// Multi-threaded loops of the CPU depthwise convolution over work items (forward, input gradient) and over channels
// (weight gradient, images summed inside a task: deterministic, no partial sums written). A work item is one
// (image, channel) plane in the column layout, or one (group of 8 images, channel) in the batch-interleaved layout.
// Each loop loads every input plane once into padded scratch and runs all branches of a decomposed operator on it.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Slak.Backends.Cpu;

/// <summary>Plane loops over several branches; pointers are to pinned N*C*H*W tensors (0 means "not wanted").</summary>
internal static unsafe class CpuDwConvDrivers
{
    private const int L = CpuDwConvMicro.Lanes;

    /// <summary>ys[b] = conv(x, branch b) where ys[b] != 0; ysum = sum over b when ysum != 0.</summary>
    internal static void Forward(int n, int c, int h, int w, CpuDwConvPass[] passes, nint x, nint[] ys, nint ysum)
    {
        var io = new Io(n, c, h, w);
        var g = io.G;
        bool sumOnly = ysum != 0 && Array.TrueForAll(ys, p => p == 0);
        CpuDwConvEngine.ForChunks(io.Items, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (lo, hi) =>
        {
            float* xp = CpuDwConvEngine.Scratch(g.PaddedLength + 2 * g.OutLength);
            float* sp = xp + g.PaddedLength;
            float* op = sp + g.OutLength;
            for (int item = lo; item < hi; item++)
            {
                int ch = item % c;
                io.LoadPadded(x, item, xp);
                for (int b = 0; b < passes.Length; b++)
                {
                    if (sumOnly)
                    {
                        CpuDwConvEngine.ConvPlane(g, xp, passes[b], ch, sp, accumulate: b > 0);
                        continue;
                    }
                    // The sum is kept in scratch and stored once: storing it per branch (a read-modify-write of
                    // the output tensor each time) cost more than the convolution on small planes.
                    float* dst = b == 0 ? sp : op;
                    CpuDwConvEngine.ConvPlane(g, xp, passes[b], ch, dst, accumulate: false);
                    if (ys[b] != 0) io.Store(dst, ys[b], item, add: false);
                    if (b > 0 && ysum != 0)
                        System.Numerics.Tensors.TensorPrimitives.Add(new ReadOnlySpan<float>(sp, g.OutLength),
                            new ReadOnlySpan<float>(op, g.OutLength), new Span<float>(sp, g.OutLength));
                }
                if (ysum != 0) io.Store(sp, ysum, item, add: false);
            }
        });
    }

    /// <summary>dx = sum over b of conv(dys[b], flipped branch b); passes must hold the flipped tap lists.</summary>
    internal static void BackwardData(int n, int c, int h, int w, CpuDwConvPass[] flippedPasses, nint[] dys, nint dx)
    {
        var io = new Io(n, c, h, w);
        var g = io.G;
        CpuDwConvEngine.ForChunks(io.Items, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (lo, hi) =>
        {
            float* xp = CpuDwConvEngine.Scratch(g.PaddedLength + g.OutLength);
            float* op = xp + g.PaddedLength;
            for (int item = lo; item < hi; item++)
            {
                int ch = item % c;
                for (int b = 0; b < flippedPasses.Length; b++)
                {
                    io.LoadPadded(dys[b], item, xp);
                    CpuDwConvEngine.ConvPlane(g, xp, flippedPasses[b], ch, op, accumulate: b > 0);
                }
                io.Store(op, dx, item, add: false);
            }
        });
    }

    /// <summary>dws[b][c, i, j] = sum over images and pixels of x[p + (i, j) - pad] * dys[b][p] for the taps in
    /// passes[b]'s list; taps not in the list are written as 0.</summary>
    internal static void BackwardFilter(int n, int c, int h, int w, CpuDwConvPass[] passes, nint x, nint[] dys, nint[] dws)
    {
        var io = new Io(n, c, h, w);
        var g = io.G;
        int accLen = 0;
        foreach (var pass in passes) accLen += pass.Kh * pass.Kw;
        CpuDwConvEngine.ForChunks(c, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (lo, hi) =>
        {
            float* xp = CpuDwConvEngine.Scratch(g.PaddedLength + g.OutLength + 16 + (accLen + 1) * L);
            float* dyp = xp + g.PaddedLength;
            var acc = (Vector256<float>*)CpuDwConvEngine.AlignUp(dyp + g.OutLength);
            Span<int> accStart = stackalloc int[passes.Length];
            for (int ch = lo; ch < hi; ch++)
            {
                int a = 0;
                for (int b = 0; b < passes.Length; b++)
                {
                    accStart[b] = a;
                    a += ChannelTaps(passes[b], ch);
                }
                new Span<float>(acc, a * L).Clear();
                for (int grp = 0; grp < io.Items / c; grp++)
                {
                    int item = grp * c + ch;
                    io.LoadPadded(x, item, xp);
                    for (int b = 0; b < passes.Length; b++)
                    {
                        io.LoadOutputShaped(dys[b], item, dyp);
                        CpuDwConvEngine.FilterPlane(g, xp, dyp, passes[b], ch, acc + accStart[b]);
                    }
                }
                for (int b = 0; b < passes.Length; b++)
                {
                    var pass = passes[b];
                    int kk = pass.Kh * pass.Kw;
                    float* dw = (float*)dws[b];
                    new Span<float>(dw + (nint)ch * kk, kk).Clear();
                    var taps = pass.Taps;
                    int t0 = taps.RowStart[ch * (pass.Kh + 1)], t1 = taps.RowStart[ch * (pass.Kh + 1) + pass.Kh];
                    for (int t = t0; t < t1; t++)
                        dw[taps.Flat[t]] = Vector256.Sum(acc[accStart[b] + t - t0]);
                }
            }
        });
    }

    private static int ChannelTaps(CpuDwConvPass pass, int ch)
    {
        int k1 = pass.Kh + 1;
        return pass.Taps.RowStart[ch * k1 + pass.Kh] - pass.Taps.RowStart[ch * k1];
    }

    /// <summary>Moves work items between N*C*H*W tensors and scratch in the chosen layout. Item = group * C + channel,
    /// a group being one image (column layout) or 8 images (interleaved).</summary>
    private readonly struct Io
    {
        private readonly int _n, _c, _plane;

        public Io(int n, int c, int h, int w)
        {
            _n = n;
            _c = c;
            _plane = h * w;
            G = new CpuDwConvEngine.Geometry(h, w, CpuDwConvEngine.UseInterleaved(n));
            Items = (G.Interleaved ? (n + L - 1) / L : n) * c;
        }

        public CpuDwConvEngine.Geometry G { get; }
        public int Items { get; }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void LoadPadded(nint tensor, int item, float* dst)
        {
            if (!G.Interleaved)
            {
                CpuDwConvEngine.PadPlane(G, (float*)tensor + (nint)item * _plane, dst);
                return;
            }
            nint* planes = stackalloc nint[L];
            Planes(tensor, item, planes);
            CpuDwConvEngine.PackPlanes(G, planes, dst, G.Stride, G.ImageOffset);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void LoadOutputShaped(nint tensor, int item, float* dst)
        {
            if (!G.Interleaved)
            {
                CpuDwConvEngine.TailPadPlane(G, (float*)tensor + (nint)item * _plane, dst);
                return;
            }
            nint* planes = stackalloc nint[L];
            Planes(tensor, item, planes);
            CpuDwConvEngine.PackPlanes(G, planes, dst, G.Wb, 0);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Store(float* src, nint tensor, int item, bool add)
        {
            if (!G.Interleaved)
            {
                CpuDwConvEngine.StorePlane(G, src, (float*)tensor + (nint)item * _plane, add);
                return;
            }
            nint* planes = stackalloc nint[L];
            Planes(tensor, item, planes);
            CpuDwConvEngine.UnpackPlanes(G, src, planes, add);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Planes(nint tensor, int item, nint* planes)
        {
            int grp = item / _c, ch = item % _c;
            for (int k = 0; k < L; k++)
            {
                int img = grp * L + k;
                planes[k] = img < _n ? tensor + (((nint)img * _c + ch) * _plane) * sizeof(float) : 0;
            }
        }
    }
}
