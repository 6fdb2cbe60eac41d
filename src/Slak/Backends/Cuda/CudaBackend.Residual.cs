// The SLaK block's epilogue on CUDA (IBackend.Residual.cs): one tiled-transpose kernel each way (residual.cu); gamma's
// gradient is the deterministic column sum of the scaled gradient times y, as MulLastDimBackward computes it.
using Slak.Cuda.Kernels;

namespace Slak.Backends.Cuda;

partial class CudaBackend // accessibility and sealing are declared in CudaBackend.cs
{
    /// <inheritdoc />
    public void ChannelsLastResidual(Tensor input, Tensor y, Tensor? gamma, Tensor? scale, Tensor output) =>
        ResidualKernels.Forward(Gpu, P(output), P(input), P(y), PorNull(gamma), PorNull(scale),
            input.Size(0), input.Size(1), input.Size(2) * input.Size(3));

    /// <inheritdoc />
    public void ChannelsLastResidualBackward(Tensor y, Tensor? gamma, Tensor? scale, Tensor dOutput, Tensor? dy,
                                             Tensor? dgamma)
    {
        int n = y.Size(0), hw = y.Size(1) * y.Size(2), c = y.Size(3);
        using var scaled = dgamma is null ? null : Tensor.Empty(y.ShapeArray, y.Device);
        ResidualKernels.Backward(Gpu, PorNull(dy), PorNull(scaled), P(dOutput), PorNull(gamma), PorNull(scale), n, c, hw);
        if (dgamma is not null) ReduceKernels.ColumnSum(Gpu, P(dgamma), P(y), P(scaled!), (long)n * hw, c);
    }
}
