// The patchify path of SLaK-T's stem and downsampling convolutions (cuda/kernels/conv2d_patchify.cu + GEMMs) in the
// kernel-model report: memory traffic against the HBM floor and the GEMMs' FLOPs against the FP32 and TF32 floors, at
// batch 128, 224 px, on one H200. The re-layout kernels do no arithmetic (their SASS rows are in the table above);
// they are modeled as bytes at the HBM bandwidth. Nothing here is measured.
using System.Globalization;
using System.Text;

namespace Slak.Bench.KernelModel;

/// <summary>Modeled time of the patchify path (one table of the kernel-model report).</summary>
internal static class PatchifyModel
{
    /// <summary>Dense TF32 tensor-core rate of an H100/H200 SXM (datasheet, without sparsity), FLOP/s.</summary>
    public const double Tf32FlopsPerSecond = 494.7e12;

    /// <summary>One convolution with kernel = stride = S: N images of Cin x H x H into Cout x H/S x H/S.</summary>
    public sealed record Layer(string Name, int Cin, int H, int Cout, int S);

    /// <summary>SLaK-T's stem and its three downsampling layers at 224 px.</summary>
    public static readonly Layer[] SlakTiny =
    [
        new("stem", 3, 224, 124, 4),
        new("down 1-2", 124, 56, 249, 2),
        new("down 2-3", 249, 28, 499, 2),
        new("down 3-4", 499, 14, 998, 2),
    ];

    /// <summary>One pass of one layer: ideal bytes (inputs and outputs once), the path's bytes, GEMM FLOPs and the
    /// path's re-layout bytes (the part that is not the GEMM's own traffic).</summary>
    public sealed record Estimate(string Layer, string Pass, double Flops, double IdealBytes, double RelayoutBytes, double GemmBytes)
    {
        public double HbmFloorMs => 1e3 * IdealBytes / DwConvModel.HbmBytesPerSecond;

        public double RelayoutMs => 1e3 * RelayoutBytes / DwConvModel.HbmBytesPerSecond;

        /// <summary>The GEMM at the larger of its FLOP time at <paramref name="flopsPerSecond"/> and its bytes at HBM
        /// speed.</summary>
        public double GemmMs(double flopsPerSecond) =>
            1e3 * Math.Max(Flops / flopsPerSecond, GemmBytes / DwConvModel.HbmBytesPerSecond);

        public double ModeledMs(double flopsPerSecond) => RelayoutMs + GemmMs(flopsPerSecond);
    }

    /// <summary>The three passes of <paramref name="l"/> at batch <paramref name="n"/> (floats of 4 bytes):
    /// forward = patchify (x read, P written) + GEMM (P, W' read, y written); input gradient = GEMM (dy, W read, dP
    /// written) + un-patchify (dP read, dx written); weight gradient = patchify + permute of dy (read, written) + GEMM
    /// (P, dy' read) + the bias gradient's read of dy.</summary>
    public static IEnumerable<Estimate> Passes(Layer l, int n)
    {
        int o = l.H / l.S;
        double x = 4.0 * n * l.Cin * l.H * l.H, y = 4.0 * n * l.Cout * o * o, p = 4.0 * n * l.Cin * l.S * l.S * o * o;
        double w = 4.0 * l.Cout * l.Cin * l.S * l.S, ones = 4.0 * n * o * o;
        double flops = 2.0 * n * o * o * l.Cin * l.S * l.S * l.Cout;
        yield return new Estimate(l.Name, "fwd", flops, x + w + y, x + p + ones, p + ones + w + y);
        yield return new Estimate(l.Name, "dgrad", flops, y + w + x, p + x, y + w + p);
        yield return new Estimate(l.Name, "wgrad", flops, x + y + w, x + p + 2 * y + y, p + y + w);
    }

    /// <summary>Appends the table (one row per layer and pass) and its totals.</summary>
    public static void Append(StringBuilder sb, int batch = 128)
    {
        var inv = CultureInfo.InvariantCulture;
        double fp32 = 2 * DwConvModel.FmaPerSecond;
        sb.AppendLine(inv, $"## Modeled: the stem and downsampling convolutions as patchify + GEMM (SLaK-T, batch {batch}, 224 px, one H200)");
        sb.AppendLine();
        sb.AppendLine(inv, $"Kernel = stride, no padding: re-layout kernels (conv2d_patchify.cu, memory-bound: bytes at {DwConvModel.HbmBytesPerSecond / 1e12:F1} TB/s) around cuBLAS GEMMs (the larger of FLOPs at the FP32 floor, {fp32 / 1e12:F1} TFLOP/s, or the TF32 tensor-core floor, {Tf32FlopsPerSecond / 1e12:F0} TFLOP/s, and their bytes at HBM speed). The ideal floor reads inputs and writes outputs once. Ignored: GEMM efficiency below its floor (skinny shapes: the stem's K is 48), launch gaps, L2 hits, the ones row and W' copy of the bias (counted as bytes only). The weight-gradient pass includes the bias gradient's read of dy.");
        sb.AppendLine();
        sb.AppendLine("| layer | pass | GFLOP | ideal MB | re-layout MB | HBM floor ms | re-layout ms | GEMM FP32 ms | GEMM TF32 ms | modeled FP32 ms | modeled TF32 ms | HBM floor / modeled TF32 |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        double sum32 = 0, sumTf = 0, sumFloor = 0;
        foreach (var l in SlakTiny)
            foreach (var e in Passes(l, batch))
            {
                double m32 = e.ModeledMs(fp32), mtf = e.ModeledMs(Tf32FlopsPerSecond);
                sum32 += m32;
                sumTf += mtf;
                sumFloor += Math.Max(e.HbmFloorMs, 1e3 * e.Flops / Tf32FlopsPerSecond);
                sb.AppendLine(inv, $"| {e.Layer} | {e.Pass} | {e.Flops / 1e9:F1} | {e.IdealBytes / 1e6:F0} | {e.RelayoutBytes / 1e6:F0} | {e.HbmFloorMs:F3} | {e.RelayoutMs:F3} | {e.GemmMs(fp32):F3} | {e.GemmMs(Tf32FlopsPerSecond):F3} | {m32:F3} | {mtf:F3} | {e.HbmFloorMs / mtf:F2} |");
            }
        sb.AppendLine();
        sb.AppendLine(inv, $"All four layers, forward and both backwards: modeled {sum32:F2} ms (FP32 GEMMs), {sumTf:F2} ms (TF32 GEMMs); the floor (ideal bytes or TF32 FLOPs, whichever is larger) {sumFloor:F2} ms.");
        sb.AppendLine();
    }
}
