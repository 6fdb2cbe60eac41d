// The arithmetic precision of a run (slak train/eval/infer --precision). Weights, optimizer state, BatchNorm running
// statistics, checkpoints and exports are float32 under every precision (the master copy); the precision says how
// the operators compute: docs/mixed-precision.md.
namespace Slak;

/// <summary>How operators compute (master weights stay float32 under every precision).</summary>
public enum Precision
{
    /// <summary>IEEE float32 everywhere.</summary>
    Fp32,

    /// <summary>GEMM inputs rounded to TF32 (10 mantissa bits: cuBLAS TF32 tensor-core math on a GPU, the inputs
    /// rounded on cuda-emu), everything else float32. On the CPU it is float32.</summary>
    Tf32,

    /// <summary>Activations stored as bfloat16 between operators and GEMM/convolution inputs read as bfloat16 with
    /// float32 accumulation; loss, norm statistics, the residual stream and all gradients of parameters in
    /// float32.</summary>
    Bf16,
}
