// Strip epilogues of the block MLP (CpuMlp.cs): the element-wise work on a GEMM's output done per strip of Mr (8)
// rows as soon as the micro-kernels have written the strip's last tile, while the strip (8 x 124 floats at C = 31)
// is in L1, instead of per row block (up to Mc = 192 rows, ~90 KiB: L2) or in separate passes over the MLP's whole
// block of rows (256 KiB: L2). The row-block driver (CpuGemm.DriveLocalA) runs the tiles of a strip one after another
// when an epilogue asks for strips and the product's packed B is small enough to stay in L1/L2 across the strips
// (short k: the MLP's first product and its dact = dy w2 product, k = C); otherwise it calls the same Apply per row
// block. The arithmetic per element is the same as the block-level epilogues (CpuGemm.Epilogue.cs) and the
// MLP's separate passes, and the column sums add the rows in the same order, so the results are the same bits.
namespace Slak.Backends.Cpu;

/// <summary>C[i, j] += bias[j] (C keeps the pre-activation), y[i, j] = GELU(C[i, j]) (y has row stride n), per
/// strip; for a single-threaded or multi-threaded GEMM.</summary>
internal sealed unsafe class BiasGeluStripEpilogue(float* bias, float* y) : GemmEpilogue
{
    private int _n;

    /// <inheritdoc />
    internal override bool PerStrip => true;

    /// <inheritdoc />
    public override void Begin(int m, int n, int rowBlocks) => _n = n;

    /// <inheritdoc />
    public override void Apply(float* c, int ldc, int row0, int rows, int col0, int cols, int rowBlock)
        => CpuGelu.BiasForwardRows(c + (long)row0 * ldc + col0, ldc, rows, cols, bias + col0,
            y + (long)row0 * _n + col0, _n);
}

/// <summary>The MLP backward's dact product: C[i, j] *= GELU'(pre[i, j]) (C becomes dpre), colSums[j] += C[i, j]
/// (float, rows in order: the bias gradient of one block) and, where act is not null, act[i, j] = GELU(pre[i, j]);
/// pre and act have row stride n. For a single-threaded GEMM only (the column sums are not shared safely across
/// concurrent blocks); the caller clears colSums.</summary>
internal sealed unsafe class GeluGradStripEpilogue(float* pre, float* act, float* colSums) : GemmEpilogue
{
    private int _n;

    /// <inheritdoc />
    internal override bool PerStrip => true;

    /// <inheritdoc />
    public override void Begin(int m, int n, int rowBlocks) => _n = n;

    /// <inheritdoc />
    public override void Apply(float* c, int ldc, int row0, int rows, int col0, int cols, int rowBlock)
    {
        long at = (long)row0 * _n + col0;
        CpuGelu.BackwardRows(pre + at, _n, c + (long)row0 * ldc + col0, ldc, rows, cols, colSums + col0,
            act == null ? null : act + at, _n);
    }
}
