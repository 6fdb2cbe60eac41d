// Rows of conv2d_patchify.cu: SLaK-T's stem (4x4 stride 4, 3 -> 124 on 224 px) and its stage-1 -> 2 downsampling (2x2
// stride 2, 124 -> 249 on 56 x 56) through the patchify path (Conv2dPatchifyKernels: the re-layout kernels plus cuBLAS
// GEMMs), forward, input gradient and weight + bias gradient, each beside the direct conv2d.cu rows of the same shape
// (Cases.Conv.cs). FLOPs are the convolution's; bytes the ideal traffic (inputs and outputs once, not the workspace).
// PyTorch's conv2d on the same shapes runs in bench/gpu/run.sh (bench/torch/patchify_peer.py).
// Sampling: skipped. The GEMMs read every element of the re-laid-out workspace, so a block sample of the
// re-layout kernel would leave poison in every output (the rows run whole at the tiny scale on the emulator).
using Slak.Backends;
using Slak.Cuda.Kernels;

namespace Slak.GpuCheck;

internal static partial class Cases
{
    private const string PatchifySampleNote = "the GEMMs read all of the re-laid-out workspace: not block-sampled";

    private static IEnumerable<GpuCase> Patchify()
    {
        foreach (bool stem in new[] { true, false })
        {
            string shapeName = stem ? "stem 4x4/4" : "downsample 2x2/2";
            yield return PatchifyRow(stem ? "patchify_kernel" : "patchify_weight_bias_kernel", $"Conv2dForward ({shapeName})", stem,
                (ctx, c) =>
                {
                    var x = ctx.Random(c.N, c.Ci, c.H, c.H);
                    var w = ctx.Random(c.Co, c.Ci, c.S, c.S);
                    var bias = ctx.Random(c.Co);
                    ctx.Check($"({c.N},{c.Ci},{c.H},{c.H}) -> {c.Co}", c.Flops, c.Bytes, [[c.N, c.Co, c.O, c.O]],
                        (be, o) => be.Conv2dForward(T(x, be), T(w, be), T(bias, be), o[0], c.S, c.S, 0, 0),
                        atol: 1e-3 + 1e-5 * c.K, rtol: 1e-3);
                });
            yield return PatchifyRow("unpatchify_kernel", $"Conv2dBackwardData ({shapeName})", stem, (ctx, c) =>
            {
                var dy = ctx.Random(c.N, c.Co, c.O, c.O);
                var w = ctx.Random(c.Co, c.Ci, c.S, c.S);
                ctx.Check($"({c.N},{c.Ci},{c.H},{c.H}) <- {c.Co}", c.Flops, c.Bytes, [[c.N, c.Ci, c.H, c.H]],
                    (be, o) => be.Conv2dBackwardData(T(dy, be), T(w, be), o[0], c.S, c.S, 0, 0),
                    atol: 1e-3 + 1e-5 * c.Co, rtol: 1e-3);
            });
            yield return PatchifyRow("patchify_kernel", $"Conv2dBackwardFilter ({shapeName})", stem, (ctx, c) =>
            {
                var x = ctx.Random(c.N, c.Ci, c.H, c.H);
                var dy = ctx.Random(c.N, c.Co, c.O, c.O);
                long reduce = (long)c.N * c.O * c.O;
                ctx.Check($"({c.N},{c.Ci},{c.H},{c.H}) -> {c.Co}", c.Flops, c.Bytes, [[c.Co, c.Ci, c.S, c.S], [c.Co]],
                    (be, o) => be.Conv2dBackwardFilter(T(x, be), T(dy, be), o[0], o[1], c.S, c.S, 0, 0),
                    atol: 1e-3 + 2e-6 * reduce, rtol: 1e-3);
            });
        }
    }

    /// <summary>The geometry of a patchify row: N images of Ci x H x H, kernel = stride = S, Co x O x O out.</summary>
    private sealed record PatchifyShape(int N, int Ci, int H, int Co, int S)
    {
        public int O => H / S;
        public int K => Ci * S * S;
        public double Flops => 2.0 * N * Co * O * O * K;
        public double Bytes => 4.0 * N * ((double)Ci * H * H + (double)Co * O * O);
    }

    private static GpuCase PatchifyRow(string kernel, string op, bool stem, Action<CheckContext, PatchifyShape> run) =>
        new(kernel, "patchify", op, ctx =>
        {
            var s = Sizes.For(ctx.Full);
            run(ctx, stem ? new PatchifyShape(s.B, 3, s.Image, s.C[0], 4) : new PatchifyShape(s.B, s.C[0], s.H[0], s.C[1], 2));
        })
        {
            Sampling = SampleHandling.Skip,
            SampleNote = PatchifySampleNote,
        };

    // conv2d.cu's direct kernels for the call, also at kernel == stride (process-wide; rows run one at a time).
    private static void DirectConv(Action run)
    {
        Conv2dPatchifyKernels.Disabled = true;
        try
        {
            run();
        }
        finally
        {
            Conv2dPatchifyKernels.Disabled = false;
        }
    }
}
