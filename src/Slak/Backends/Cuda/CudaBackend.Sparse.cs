// CUDA backend: one prune/regrow round as the radix-select kernels of cuda/kernels/sparse.cu. Weight, mask, gradient
// and keep mask stay on the device; only the new live count comes back.
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;

namespace Slak.Backends.Cuda;

internal sealed partial class CudaBackend
{
    /// <inheritdoc />
    public long SparsePruneRegrow(Tensor weight, Tensor mask, Tensor? grad, Tensor keep, long numRemove,
                                  SparseRegrowth growth, ulong roundSeed)
    {
        SparseRoundChecks.Assert(Device, weight, mask, grad, keep, numRemove, growth);
        DevicePtr g = growth == SparseRegrowth.Gradient ? P(grad!) : DevicePtr.Null;
        return SparseKernels.PruneRegrow(Gpu, P(weight), P(mask), g, P(keep), weight.Numel, numRemove,
                                         growth == SparseRegrowth.RandomBernoulli, roundSeed);
    }
}
