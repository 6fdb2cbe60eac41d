// Rows of elementwise.cu, activation.cu and reduce.cu, at SLaK-T stage-1 sizes (the largest tensors of the model:
// the (B, 124, 56, 56) maps, the (B*56*56, 496) MLP hidden). Bytes count one read of each input and one write of
// each output. Under --blocks sample every element is written by exactly one block (grid-stride loops included), so
// the generic poison comparison applies, except: axpy and add_bias update in place (InPlace), and the sums
// accumulate across the whole grid into a fixed 256-block partial array (Whole: 65k emulated threads at any size).
using Slak.Backends;
using Slak.Backends.Cuda;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;

namespace Slak.GpuCheck;

internal static partial class Cases
{
    private static Tensor T((Tensor Cpu, Tensor Gpu) p, IBackend be) => CheckContext.T(p, be);

    /// <summary>The device address of a CUDA tensor (for kernels reached only through their launcher).</summary>
    private static DevicePtr Ptr(Tensor t) => ((CudaStorage)t.Storage).Pointer.Offset(t.Offset * sizeof(float));

    private static IEnumerable<GpuCase> Elementwise()
    {
        const string g = "elementwise";
        yield return new GpuCase("fill_kernel", g, "Fill", ctx => Map(ctx, 0, 1, (be, x, o) => be.Fill(o[0], 0.375f)));
        // The backend's Copy is a device-to-device memcpy; copy_kernel is reached through its launcher.
        yield return new GpuCase("copy_kernel", g, "ElementwiseKernels.Copy", ctx => Map(ctx, 0, 1, (be, x, o) =>
        {
            if (be is CudaBackend gpu) ElementwiseKernels.Copy(gpu.Gpu, Ptr(o[0]), Ptr(T(x[0], be)), o[0].Numel);
            else be.Copy(T(x[0], be), o[0]);
        }));
        yield return new GpuCase("add_kernel", g, "Add", ctx => Map(ctx, 0, 2, (be, x, o) => be.Add(T(x[0], be), T(x[1], be), o[0])));
        yield return new GpuCase("mul_kernel", g, "Mul", ctx => Map(ctx, 0, 2, (be, x, o) => be.Mul(T(x[0], be), T(x[1], be), o[0])));
        yield return new GpuCase("scale_kernel", g, "Scale", ctx => Map(ctx, 0, 1, (be, x, o) => be.Scale(T(x[0], be), -1.25f, o[0])));
        yield return new GpuCase("axpy_kernel", g, "AddScaled (in place)", ctx =>
        {
            var s = Sizes.For(ctx.Full);
            int[] shape = [s.B, s.C[0], s.H[0], s.H[0]];
            var x = ctx.Random(shape);
            float[] y0 = ctx.Random(shape).Cpu.ToArray();
            ctx.Check(Describe(shape), 2.0 * y0.Length, 12.0 * y0.Length, [shape],
                (be, o) => be.AddScaled(o[0], T(x, be), 0.625f), initial: [y0]);
        }) { Sampling = SampleHandling.InPlace, SampleNote = "in place: compared where changed" };
        yield return new GpuCase("fill_from_scalar_kernel", g, "FillFromScalar (Sum backward)", ctx =>
        {
            var s = Sizes.For(ctx.Full);
            int[] shape = [s.B, s.C[0], s.H[0], s.H[0]];
            var scalar = ctx.FromArray([1.5f], 1);
            long n = (long)s.B * s.C[0] * s.H[0] * s.H[0];
            ctx.Check(Describe(shape), 0, 4.0 * n, [shape], (be, o) => be.FillFromScalar(o[0], T(scalar, be), 0.25f));
        });
    }

    private static IEnumerable<GpuCase> Activations()
    {
        const string g = "activation";
        yield return new GpuCase("gelu_fwd_kernel", g, "Gelu", ctx => Map(ctx, 4, 1, (be, x, o) => be.Gelu(T(x[0], be), o[0])));
        yield return new GpuCase("gelu_bwd_kernel", g, "GeluBackward",
            ctx => Map(ctx, 4, 2, (be, x, o) => be.GeluBackward(T(x[0], be), T(x[1], be), o[0])));
        yield return new GpuCase("mul_last_dim_kernel", g, "MulLastDim (layer scale)", ctx =>
        {
            var s = Sizes.For(ctx.Full);
            int[] shape = [s.B, s.H[0], s.H[0], s.C[0]];
            var x = ctx.Random(shape);
            var gamma = ctx.Random(s.C[0]);
            long n = (long)s.B * s.H[0] * s.H[0] * s.C[0];
            ctx.Check(Describe(shape), n, 8.0 * n, [shape], (be, o) => be.MulLastDim(T(x, be), T(gamma, be), o[0]));
        });
        yield return new GpuCase("mul_rows_kernel", g, "MulRows (drop path)", ctx =>
        {
            var s = Sizes.For(ctx.Full);
            int[] shape = [s.B, s.H[0], s.H[0], s.C[0]];
            var x = ctx.Random(shape);
            var keep = ctx.FromArray(ctx.Mask(s.B, 0.9).Select(v => v / 0.9f).ToArray(), s.B);
            long n = (long)s.B * s.H[0] * s.H[0] * s.C[0];
            ctx.Check(Describe(shape), n, 8.0 * n, [shape], (be, o) => be.MulRows(T(x, be), T(keep, be), o[0]));
        });
        yield return new GpuCase("add_bias_kernel", g, "AddBiasLastDim (in place)", ctx =>
        {
            var s = Sizes.For(ctx.Full);
            int[] shape = [s.B * s.H[0] * s.H[0], s.C[0]];
            var bias = ctx.Random(s.C[0]);
            float[] y0 = ctx.Random(shape).Cpu.ToArray();
            ctx.Check(Describe(shape), y0.Length, 8.0 * y0.Length, [shape], (be, o) => be.AddBiasLastDim(o[0], T(bias, be)),
                initial: [y0]);
        }) { Sampling = SampleHandling.InPlace, SampleNote = "in place: compared where changed" };
        yield return new GpuCase("add_bias_kernel", g, "AddBiasChannels (in place, NCHW)", ctx =>
        {
            var s = Sizes.For(ctx.Full);
            int[] shape = [s.B, s.C[0], s.H[0], s.H[0]];
            var bias = ctx.Random(s.C[0]);
            float[] y0 = ctx.Random(shape).Cpu.ToArray();
            ctx.Check(Describe(shape), y0.Length, 8.0 * y0.Length, [shape], (be, o) => be.AddBiasChannels(o[0], T(bias, be)),
                initial: [y0]);
        }) { Sampling = SampleHandling.InPlace, SampleNote = "in place: compared where changed" };
        yield return new GpuCase("channels_last_residual_kernel", g, "ChannelsLastResidual (block epilogue)", ctx =>
        {
            var s = Sizes.For(ctx.Full);
            int[] nchw = [s.B, s.C[0], s.H[0], s.H[0]], nhwc = [s.B, s.H[0], s.H[0], s.C[0]];
            var input = ctx.Random(nchw);
            var y = ctx.Random(nhwc);
            var gamma = ctx.Random(s.C[0]);
            var keep = ctx.FromArray(ctx.Mask(s.B, 0.9).Select(v => v / 0.9f).ToArray(), s.B);
            long n = (long)s.B * s.H[0] * s.H[0] * s.C[0];
            ctx.Check(Describe(nchw), 2.0 * n, 12.0 * n, [nchw],
                (be, o) => be.ChannelsLastResidual(T(input, be), T(y, be), T(gamma, be), T(keep, be), o[0]));
        });
        yield return new GpuCase("channels_last_residual_bwd_kernel", g, "ChannelsLastResidualBackward", ctx =>
        {
            var s = Sizes.For(ctx.Full);
            int[] nchw = [s.B, s.C[0], s.H[0], s.H[0]], nhwc = [s.B, s.H[0], s.H[0], s.C[0]];
            var y = ctx.Random(nhwc);
            var dOut = ctx.Random(nchw);
            var gamma = ctx.Random(s.C[0]);
            var keep = ctx.FromArray(ctx.Mask(s.B, 0.9).Select(v => v / 0.9f).ToArray(), s.B);
            long n = (long)s.B * s.H[0] * s.H[0] * s.C[0];
            ctx.Check(Describe(nhwc), 3.0 * n, 16.0 * n, [nhwc, [s.C[0]]],
                (be, o) => be.ChannelsLastResidualBackward(T(y, be), T(gamma, be), T(keep, be), T(dOut, be), o[0], o[1]),
                atol: 1e-2, rtol: 1e-3);
        }) { Sampling = SampleHandling.Whole, SampleNote = "gamma's gradient sums over every pixel" };
    }

    private static IEnumerable<GpuCase> Reductions()
    {
        const string g = "reduce";
        yield return new GpuCase("sum_partial_kernel", g, "SumAll", ctx =>
        {
            var s = Sizes.For(ctx.Full);
            int[] shape = [s.B, s.C[0], s.H[0], s.H[0]];
            var x = ctx.Random(shape);
            long n = x.Cpu.Numel;
            ctx.Check(Describe(shape), n, 4.0 * n, [[1]], (be, o) => be.SumAll(T(x, be), o[0]), atol: 1e-7 * n + 1e-4, rtol: 1e-4);
        }) { Sampling = SampleHandling.Whole, SampleNote = "256 partial sums over the whole tensor" };
        yield return new GpuCase("column_sum_partial_kernel", g, "SumToLastDim (bias gradient)", ctx => ColumnSum(ctx))
        { Sampling = SampleHandling.Whole, SampleNote = "per-chunk column partials summed by column_sum_finalize" };
        yield return new GpuCase("column_sum_finalize_kernel", g, "SumToLastDim (bias gradient)", ctx => ColumnSum(ctx))
        { Sampling = SampleHandling.Whole, SampleNote = "sums the partials of every chunk" };
        yield return new GpuCase("global_avg_pool_kernel", g, "GlobalAvgPool", ctx =>
        {
            var s = Sizes.For(ctx.Full);
            int[] shape = [s.B, s.C[3], s.H[3], s.H[3]];
            var x = ctx.Random(shape);
            ctx.Check(Describe(shape), x.Cpu.Numel, 4.0 * x.Cpu.Numel, [[s.B, s.C[3]]], (be, o) => be.GlobalAvgPool(T(x, be), o[0]));
        });
        yield return new GpuCase("global_avg_pool_bwd_kernel", g, "GlobalAvgPoolBackward", ctx =>
        {
            var s = Sizes.For(ctx.Full);
            int[] shape = [s.B, s.C[3], s.H[3], s.H[3]];
            var dy = ctx.Random(s.B, s.C[3]);
            long n = (long)s.B * s.C[3] * s.H[3] * s.H[3];
            ctx.Check(Describe(shape), 0, 4.0 * n, [shape], (be, o) => be.GlobalAvgPoolBackward(T(dy, be), o[0]));
        });
        yield return new GpuCase("permute_kernel", g, "Permute NCHW -> NHWC", ctx =>
        {
            var s = Sizes.For(ctx.Full);
            int[] shape = [s.B, s.C[0], s.H[0], s.H[0]];
            var x = ctx.Random(shape);
            long n = x.Cpu.Numel;
            ctx.Check(Describe(shape), 0, 8.0 * n, [[s.B, s.H[0], s.H[0], s.C[0]]],
                (be, o) => be.Permute(T(x, be), [0, 2, 3, 1], o[0]), atol: 0, rtol: 0);
        });
    }

    private static void ColumnSum(CheckContext ctx)
    {
        var s = Sizes.For(ctx.Full);
        int[] shape = [s.B * s.H[0] * s.H[0], s.C[0]];
        var dy = ctx.Random(shape);
        long n = dy.Cpu.Numel;
        ctx.Check(Describe(shape), n, 4.0 * n, [[s.C[0]]], (be, o) => be.SumToLastDim(T(dy, be), o[0]),
            atol: 1e-6 * shape[0] + 1e-4, rtol: 1e-4);
    }

    /// <summary>An elementwise map over a stage-1 tensor (the MLP hidden when <paramref name="widthFactor"/> is 4,
    /// else the (B, C, H, W) map) with <paramref name="inputs"/> random inputs and one output.</summary>
    private static void Map(CheckContext ctx, int widthFactor, int inputs, Action<IBackend, (Tensor Cpu, Tensor Gpu)[], Tensor[]> op)
    {
        var s = Sizes.For(ctx.Full);
        int[] shape = widthFactor > 0 ? [s.B * s.H[0] * s.H[0], widthFactor * s.C[0]] : [s.B, s.C[0], s.H[0], s.H[0]];
        var x = Enumerable.Range(0, inputs).Select(_ => ctx.Random(shape)).ToArray();
        long n = shape.Aggregate(1L, (a, b) => a * b);
        ctx.Check(Describe(shape), n, 4.0 * n * (inputs + 1), [shape], (be, o) => op(be, x, o));
    }

    private static string Describe(int[] shape) => "(" + string.Join(",", shape) + ")";
}
