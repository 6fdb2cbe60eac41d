// Rows of sparse.cu: one prune/regrow round (our semantics) on the largest SLaK-T weight (stage-4 pwconv, 3992 x 998,
// density 0.6, prune fraction 0.3). Every kernel of the round is launched by the one operation, so each row runs the
// round (random-key regrowth; Bernoulli regrowth for sparse_grow_bernoulli_kernel; gradient regrowth for the
// keys row) and requires masks identical to the CPU's. The mask is reset from a copy before each run, so timing runs
// see the same input. Sampling: the round is a chain of radix selections whose histograms accumulate over the whole
// grid (atomics into one state), so it runs whole; its grids are capped (grid-stride), which keeps that affordable.
using Slak.Backends;

namespace Slak.GpuCheck;

internal static partial class Cases
{
    private static IEnumerable<GpuCase> Sparse()
    {
        const string g = "sparse";
        string[] exact =
        [
            "sparse_prune_keys_kernel", "sparse_select_init_kernel", "sparse_select_histogram_kernel",
            "sparse_select_scan_kernel", "sparse_prune_mark_kernel", "sparse_grow_mark_kernel", "sparse_count_kernel",
        ];
        foreach (string kernel in exact)
        {
            yield return SparseCase(kernel, g, SparseRegrowth.RandomExact);
        }

        yield return SparseCase("sparse_grow_keys_kernel", g, SparseRegrowth.Gradient);
        yield return SparseCase("sparse_grow_bernoulli_kernel", g, SparseRegrowth.RandomBernoulli);
    }

    private static GpuCase SparseCase(string kernel, string group, SparseRegrowth growth) =>
        new(kernel, group, $"SparsePruneRegrow ({growth})", ctx =>
        {
            var s = Sizes.For(ctx.Full);
            int rows = 4 * s.C[3], cols = s.C[3];
            long n = (long)rows * cols;
            var w = ctx.Random(rows, cols);
            var grad = ctx.Random(rows, cols);
            float[] m0 = ctx.Mask(n, 0.6);
            long numRemove = (long)Math.Ceiling(0.3 * m0.Count(v => v != 0));
            var mask0 = ctx.FromArray(m0, rows, cols);
            Tensor? G(IBackend be) => growth == SparseRegrowth.Gradient ? T(grad, be) : null;
            ctx.Check($"({rows},{cols}) d=0.6 p=0.3", 0, 16.0 * n, [[rows, cols], [rows, cols]],
                (be, o) =>
                {
                    be.Copy(T(mask0, be), o[0]);
                    be.SparsePruneRegrow(T(w, be), o[0], G(be), o[1], numRemove, growth, 0x5EED_5EEDUL);
                }, atol: 0, rtol: 0);
        })
        {
            Sampling = SampleHandling.Whole,
            SampleNote = "radix selection accumulates over the whole grid",
        };

    private static IEnumerable<GpuCase> Gemm()
    {
        // cuBLAS (GPU) / the CPU GEMM (emulator): not kernels of cuda/kernels, but the 1x1 convolutions are most of
        // SLaK-T's FLOPs, so their rows belong next to the kernels'. Stage 1, B*56*56 rows.
        foreach (var (ta, tb, what) in new[] { (false, true, "pwconv1 fwd"), (false, false, "pwconv1 bwd data"), (true, false, "pwconv1 bwd weight") })
        {
            yield return new GpuCase($"sgemm {what}", "gemm", "Gemm (cuBLAS)", ctx =>
            {
                var s = Sizes.For(ctx.Full);
                int m = s.B * s.H[0] * s.H[0], c = s.C[0];
                var (mm, nn, kk) = what switch
                {
                    "pwconv1 fwd" => (m, 4 * c, c),
                    "pwconv1 bwd data" => (m, c, 4 * c),
                    _ => (4 * c, c, m),
                };
                var a = ta ? ctx.Random(kk, mm) : ctx.Random(mm, kk);
                var b = tb ? ctx.Random(nn, kk) : ctx.Random(kk, nn);
                ctx.Check($"m={mm} n={nn} k={kk}", 2.0 * mm * nn * kk, 4.0 * ((double)mm * kk + (double)kk * nn + (double)mm * nn),
                    [[mm, nn]], (be, o) => be.Gemm(ta, tb, mm, nn, kk, 1f, T(a, be), T(b, be), 0f, o[0]),
                    atol: 1e-3 + 1e-5 * kk, rtol: 1e-3);
            })
            {
                Sampling = SampleHandling.Skip,
                SampleNote = "not an emulator kernel (cuBLAS on a GPU, the CPU GEMM on the emulator)",
            };
        }
    }
}
