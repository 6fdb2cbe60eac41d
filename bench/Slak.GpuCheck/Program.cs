// slak gpu check: every kernel of cuda/kernels (one row each, named by the kernel), the cuBLAS GEMMs and end-to-end
// SLaK-T training and inference on the CUDA backend, each compared with the CPU backend (device outputs poisoned
// first) and timed, as one markdown table written and flushed row by row. Each row ends with ok, FAIL or skip; the
// exit code is 1 when any row is FAIL (2 for a usage error). Cases are isolated: an exception ends its case with
// the message, and by default each case group runs in a child process, restarted after a case that crashed the
// process or left a sticky CUDA error (see ProcessDriver).
//   Slak.GpuCheck [--device cuda|cuda-emu] [--scale full|tiny] [--blocks all|sample] [--out table.md] ...
//   (CheckOptions.Usage lists every option)
namespace Slak.GpuCheck;

internal static class Program
{
    private static int Main(string[] args) => args switch
    {
        ["--nccl"] => NcclSmoke.Run(Console.Out),
        ["--nccl-train"] => NcclTrainStep.Run(Console.Out, "cuda"),
        ["--nccl-train", string device] => NcclTrainStep.Run(Console.Out, device),
        _ => CheckApp.Run(args, Console.Out),
    };
}
