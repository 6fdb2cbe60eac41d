// The normalization kernels of cuda/kernels/norm.cu in the kernel-model report: per kernel and SLaK-T stage shape
// (batch 128, 224 px, one H200), the bytes the kernel moves, the HBM floor of the operation (its tensors read and
// written once) and a modeled time from the launch plan: the bytes at HBM bandwidth, slowed when the launch cannot keep
// enough busy warps on the SMs. These kernels do a few flops per byte; nothing here is measured.
using System.Globalization;
using System.Text;

namespace Slak.Bench.KernelModel;

/// <summary>Modeled time of the norm kernels (one table of the kernel-model report).</summary>
internal static class NormModel
{
    /// <summary>Busy warps per SM assumed to keep HBM saturated (each with a row's or a plane segment's loads in
    /// flight): an assumption of the model, not a measurement.</summary>
    public const double SaturatingWarpsPerSm = 32;

    /// <summary>SLaK-T's stages: width and map side at 224 px.</summary>
    public static readonly (int C, int H)[] Stages = [(124, 56), (249, 28), (499, 14), (998, 7)];

    /// <summary>One kernel launch of one norm operation at one stage.</summary>
    /// <param name="Op">The operation (e.g. "LN rows fwd").</param>
    /// <param name="Stage">1-4.</param>
    /// <param name="Kernel">The kernel's name (its registers come from the disassembly's resources).</param>
    /// <param name="Bytes">Bytes this launch reads and writes, every tensor pass counted (no cache hits).</param>
    /// <param name="IdealBytes">The operation's floor share: its tensors once (0 for helper launches).</param>
    /// <param name="Warps">Warps launched.</param>
    /// <param name="LanesBusy">Fraction of the launched lanes' load slots that carry data.</param>
    /// <param name="Threads">Threads per block (occupancy).</param>
    public sealed record Launch(string Op, int Stage, string Kernel, double Bytes, double IdealBytes, double Warps,
                                double LanesBusy, int Threads);

    /// <summary>The launches of every norm operation at batch <paramref name="n"/>: LayerNorm over channels-last rows
    /// (the block's norm, after and before this rewrite), the channels-first LayerNorm (stem / downsampling, at the
    /// stage it normalises) and BatchNorm (a large-kernel branch).</summary>
    public static IEnumerable<Launch> Launches(int n)
    {
        for (int s = 0; s < Stages.Length; s++)
        {
            var (c, h) = Stages[s];
            int st = s + 1;
            long rows = (long)n * h * h;
            double t = 4.0 * rows * c, stat = 4.0 * rows;
            int cls = Slak.Cuda.Kernels.NormKernels.LayerNormRowClass(c);
            bool vec = c % 4 == 0;
            double busy = vec ? c / 4.0 / (32.0 * Math.Ceiling(c / 128.0)) : c / (32.0 * Math.Ceiling(c / 32.0));
            yield return new("LN rows fwd", st, $"layernorm_rows{cls}_fwd_kernel", 2 * t + 2 * stat, 2 * t, rows, busy, 256);
            long per = Slak.Cuda.Kernels.NormKernels.LayerNormRowsPerChunk(rows), chunks = (rows + per - 1) / per;
            double part = 8.0 * chunks * c;
            yield return new("LN rows bwd", st, $"layernorm_rows{cls}_bwd_kernel", 3 * t + 2 * stat + part, 3 * t, chunks, busy, 256);
            yield return new("LN rows bwd", st, "layernorm_param_finalize_kernel", part + 8.0 * c, 0, c, Math.Min(1, chunks / 32.0), 256);
            // Before: one block of kSlakRowBlock (128) threads per row; x read three times (forward), backward = data
            // kernel (x, dy twice) + column-sum partial kernel (x, dy once more).
            double oldBusy = c / (128.0 * Math.Ceiling(c / 128.0));
            yield return new("LN rows fwd (before)", st, "layernorm_fwd_kernel", 4 * t + 2 * stat, 2 * t, rows * 4.0, oldBusy, 128);
            yield return new("LN rows bwd (before)", st, "layernorm_bwd_data_kernel", 5 * t + 2 * stat, 3 * t, rows * 4.0, oldBusy, 128);
            yield return new("LN rows bwd (before)", st, "layernorm_bwd_param_partial_kernel", 2 * t + 2 * stat, 0, Math.Ceiling(c / 256.0) * 256 / 32 * 256, c / (256.0 * Math.Ceiling(c / 256.0)), 256);

            // Channels-first (the stem's LayerNorm and those before the downsampling layers: stages 1-3 only): one
            // thread per pixel (grid-stride, at most 4096 blocks of 256); forward reads x three times (mean, centred
            // squares, output), the data gradient x and dy twice.
            if (st < 4)
            {
                double cfWarps = Math.Min(rows, 4096L * 256) / 32.0;
                yield return new("LN cf fwd", st, "layernorm_cf_fwd_kernel", 4 * t + 2 * stat, 2 * t, cfWarps, 1, 256);
                yield return new("LN cf bwd", st, "layernorm_cf_bwd_data_kernel", 5 * t + 2 * stat, 3 * t, cfWarps, 1, 256);
                int pixChunks = (h * h + 1023) / 1024;
                double cfPart = 8.0 * n * pixChunks * c;
                yield return new("LN cf bwd", st, "layernorm_cf_bwd_param_partial_kernel", 2 * t + 2 * stat + cfPart, 0, 8.0 * n * pixChunks,
                                 h * h / (1024.0 * pixChunks), 256);
                yield return new("LN cf bwd", st, "layernorm_param_finalize_kernel", cfPart + 8.0 * c, 0, c, Math.Min(1, n * pixChunks / 32.0), 256);
            }

            // BatchNorm: float64 partials per (channel, 8,192-element chunk), per-channel finalize, element pass.
            long bnChunks = Math.Max(1, (rows + 8191) / 8192);
            double bnPart = 16.0 * c * bnChunks;
            double bnBusy = h * h >= 512 ? 1 : Math.Min(1, 8192.0 / 256 / 32);
            yield return new("BN train", st, "batchnorm_stats_partial_kernel", t + bnPart, t, 8.0 * c * bnChunks, bnBusy, 256);
            yield return new("BN train", st, "batchnorm_stats_finalize_kernel", bnPart + 40.0 * c, 0, Math.Ceiling(c / 32.0), 1, 256);
            double elemWarps = Math.Ceiling(t / 4 / 8192) * 8;
            yield return new("BN train", st, "batchnorm_affine_kernel", 2 * t + 16.0 * c, 2 * t, elemWarps, 1, 256);
            yield return new("BN bwd", st, "batchnorm_bwd_partial_kernel", 2 * t + bnPart, 2 * t, 8.0 * c * bnChunks, bnBusy, 256);
            yield return new("BN bwd", st, "batchnorm_bwd_finalize_kernel", bnPart + 40.0 * c, 0, Math.Ceiling(c / 32.0), 1, 256);
            yield return new("BN bwd", st, "batchnorm_bwd_dx_kernel", 3 * t + 16.0 * c, t, elemWarps, 1, 256);
        }
    }

    /// <summary>Modeled milliseconds of one launch: its bytes at HBM bandwidth divided by the fraction of the
    /// saturating warps it keeps busy (launched warps, capped by the resident warps its registers allow, times the
    /// busy-lane fraction).</summary>
    public static double ModeledMs(Launch l, int registers)
    {
        double occupancy = registers > 0 ? DwConvModel.Occupancy(registers, l.Threads, 0) : 1;
        double resident = DwConvModel.Sms * 64 * occupancy;
        double busy = Math.Min(l.Warps, resident) * l.LanesBusy;
        double parallel = Math.Min(1, busy / (DwConvModel.Sms * SaturatingWarpsPerSm));
        return 1e3 * l.Bytes / DwConvModel.HbmBytesPerSecond / Math.Max(parallel, 1e-9);
    }

    /// <summary>Appends the table: one row per operation and stage (its launches summed), then the launches.</summary>
    public static void Append(StringBuilder sb, Func<string, int> registers, int batch = 128)
    {
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine(inv, $"## Modeled: the norm kernels against HBM bandwidth (SLaK-T, batch {batch}, 224 px, one H200)");
        sb.AppendLine();
        sb.AppendLine(inv, $"Per operation and stage: the bytes its kernels move (every tensor pass counted, workspaces included), the HBM floor (its tensors read and written once at {DwConvModel.HbmBytesPerSecond / 1e12:F1} TB/s), and a modeled time: each launch's bytes at HBM bandwidth divided by the share of {SaturatingWarpsPerSm:F0} busy warps per SM it keeps (launched warps, capped by the resident warps of its registers, times the fraction of lanes that carry data). \"LN rows\" is the block's LayerNorm over channels-last rows (on CUDA the fused NCHW->NHWC LayerNorm is a permute, not counted here, then these kernels); \"(before)\" are the block-per-row kernels, which now run only for rows over 1,024. \"LN cf\" is the channels-first LayerNorm at that stage's width and map (the stem's and the one before each downsampling layer: stages 1-3); \"BN\" a large-kernel branch's BatchNorm. Ignored: L1/L2 hits (a second read of a row or plane may hit cache, so repeated passes are an upper bound), launch gaps, DRAM page effects, the finalize kernels' serial chains, and the latency of the warp reductions. The target (>= 60 % of HBM bandwidth) can only be checked by timing on a GPU (the GPU check's norm rows, with PyTorch's layer_norm / batch_norm beside them); it is not claimed from this model.");
        sb.AppendLine();
        sb.AppendLine("| operation | stage | kernels | MB moved | floor MB | HBM floor ms | modeled ms | floor / modeled |");
        sb.AppendLine("|---|---:|---|---:|---:|---:|---:|---:|");
        foreach (var g in Launches(batch).GroupBy(l => (l.Op, l.Stage)))
        {
            double bytes = g.Sum(l => l.Bytes), ideal = g.Sum(l => l.IdealBytes);
            double ms = g.Sum(l => ModeledMs(l, registers(l.Kernel)));
            double floor = 1e3 * ideal / DwConvModel.HbmBytesPerSecond;
            string kernels = string.Join(", ", g.Select(l => l.Kernel));
            sb.AppendLine(inv, $"| {g.Key.Op} | {g.Key.Stage} | {kernels} | {bytes / 1e6:F0} | {ideal / 1e6:F0} | {floor:F3} | {ms:F3} | {floor / ms:P0} |");
        }
        sb.AppendLine();
    }
}
