// The fused MLP operators of the CPU backend: CpuGemm with an epilogue (CpuGemm.Epilogue.cs) that adds the bias,
// applies GELU or multiplies by GELU's derivative and reduces the bias gradient on each block of the output while
// the GEMM's worker still has it in cache.
namespace Slak.Backends.Cpu;

unsafe partial class CpuBackend // accessibility and sealing are declared in CpuBackend.cs
{
    /// <inheritdoc />
    public void LinearBias(Tensor x, Tensor w, Tensor bias, Tensor y)
    {
        int outF = w.Size(0), inF = w.Size(1), rows = checked((int)(y.Numel / outF));
        fixed (float* pb = S(bias))
            CpuGemm.Sgemm(false, true, rows, outF, inF, 1f, S(x), inF, S(w), inF, 0f, S(y), outF, CpuParallel.Threads,
                epilogue: new BiasEpilogue(pb));
    }

    /// <inheritdoc />
    public void LinearBiasGelu(Tensor x, Tensor w, Tensor bias, Tensor pre, Tensor y)
    {
        int outF = w.Size(0), inF = w.Size(1), rows = checked((int)(y.Numel / outF));
        fixed (float* pb = S(bias))
        fixed (float* py = S(y))
            CpuGemm.Sgemm(false, true, rows, outF, inF, 1f, S(x), inF, S(w), inF, 0f, S(pre), outF, CpuParallel.Threads,
                epilogue: new BiasGeluEpilogue(pb, py));
    }

    /// <inheritdoc />
    public void LinearBackwardDataGelu(Tensor dy, Tensor w, Tensor pre, Tensor dpre, Tensor dbias)
    {
        int outF = w.Size(0), inF = w.Size(1), rows = checked((int)(dpre.Numel / inF));
        fixed (float* pp = S(pre))
        fixed (float* pdb = S(dbias))
            CpuGemm.Sgemm(false, false, rows, inF, outF, 1f, S(dy), outF, S(w), inF, 0f, S(dpre), inF, CpuParallel.Threads,
                epilogue: new GeluGradBiasSumEpilogue(pp, pdb));
    }
}
