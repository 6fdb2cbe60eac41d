// The block MLP's two operators (IBackend.Mlp.cs) on the CPU backend: the row-block form of CpuMlp.cs, except for
// wide, short MLPs (the last stage: hidden 996 on 128-512 rows), where a block that fits L2 has under
// CpuMlp.MinBackwardBlockRows rows, its weight-gradient products are too short in k, and the row-block backward
// measured slower (bench mlp-step): at two or more threads those run split over the hidden units
// (CpuMlp.SplitHidden.cs), else (or with SLAK_MLP_SPLIT_HIDDEN=0) the backward runs the per-GEMM composition
// (MlpComposed.cs).
namespace Slak.Backends.Cpu;

unsafe partial class CpuBackend // accessibility and sealing are declared in CpuBackend.cs
{
    /// <inheritdoc />
    public void MlpForward(Tensor x, Tensor w1, Tensor b1, Tensor w2, Tensor b2, Tensor? pre, Tensor y)
    {
        fixed (float* px = S(x))
        fixed (float* pw1 = S(w1))
        fixed (float* pb1 = S(b1))
        fixed (float* pw2 = S(w2))
        fixed (float* pb2 = S(b2))
        fixed (float* ppre = pre is null ? default : S(pre))
        fixed (float* py = S(y))
            CpuMlp.Forward(MlpArgs(x, w1, w2, px, pw1, pb1, pw2, pb2, ppre), py, CpuParallel.Threads);
    }

    /// <inheritdoc />
    public void MlpBackward(Tensor dy, Tensor x, Tensor w1, Tensor b1, Tensor w2, Tensor? pre,
        Tensor dx, Tensor dw1, Tensor db1, Tensor dw2, Tensor db2)
    {
        var (rows, _, hidden, _) = MlpComposed.Dims(x, w1, w2);
        bool split = CpuMlp.SplitHiddenBackward && CpuMlp.UsesSplitHidden(rows, hidden, CpuParallel.Threads);
        if (!split && CpuMlp.BlockRows(rows, hidden, CpuParallel.Threads) < CpuMlp.MinBackwardBlockRows)
        {
            MlpComposed.Backward(this, dy, x, w1, b1, w2, pre, dx, dw1, db1, dw2, db2);
            return;
        }
        fixed (float* px = S(x))
        fixed (float* pw1 = S(w1))
        fixed (float* pb1 = S(b1))
        fixed (float* pw2 = S(w2))
        fixed (float* ppre = pre is null ? default : S(pre))
        fixed (float* pdy = S(dy))
        fixed (float* pdx = S(dx))
        fixed (float* pdw1 = S(dw1))
        fixed (float* pdb1 = S(db1))
        fixed (float* pdw2 = S(dw2))
        fixed (float* pdb2 = S(db2))
        {
            var args = MlpArgs(x, w1, w2, px, pw1, pb1, pw2, null, ppre);
            var grads = new CpuMlp.Grads { Dy = pdy, Dx = pdx, Dw1 = pdw1, Db1 = pdb1, Dw2 = pdw2, Db2 = pdb2 };
            if (split) CpuMlp.BackwardSplitHidden(args, grads, CpuParallel.Threads);
            else CpuMlp.Backward(args, grads, CpuParallel.Threads);
        }
    }

    private static CpuMlp.Args MlpArgs(Tensor x, Tensor w1, Tensor w2, float* px, float* pw1, float* pb1, float* pw2,
        float* pb2, float* ppre)
    {
        var (rows, inF, hidden, outF) = MlpComposed.Dims(x, w1, w2);
        return new CpuMlp.Args
        {
            X = px, W1 = pw1, B1 = pb1, W2 = pw2, B2 = pb2, Pre = ppre, Rows = rows, In = inF, Hidden = hidden, Out = outF,
        };
    }
}
