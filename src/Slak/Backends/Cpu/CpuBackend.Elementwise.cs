// Element-wise kernels of the CPU backend (family elementwise): fill, scalar broadcast, add, axpy, multiply, scale,
// vectorized through TensorPrimitives and split into chunks over threads (Chunked) for large tensors.
using System.Numerics.Tensors;

namespace Slak.Backends.Cpu;

internal sealed partial class CpuBackend
{
    /// <inheritdoc />
    public void Fill(Tensor destination, float value) => S(destination).Fill(value);

    /// <inheritdoc />
    public void FillFromScalar(Tensor destination, Tensor scalar, float scale) => S(destination).Fill(S(scalar)[0] * scale);

    /// <inheritdoc />
    public void Add(Tensor a, Tensor b, Tensor y) =>
        Chunked(y.Numel, (s, n) => TensorPrimitives.Add(S(a).Slice(s, n), S(b).Slice(s, n), S(y).Slice(s, n)));

    /// <inheritdoc />
    public void AddScaled(Tensor y, Tensor x, float alpha) =>
        Chunked(y.Numel, (s, n) => TensorPrimitives.MultiplyAdd(S(x).Slice(s, n), alpha, S(y).Slice(s, n), S(y).Slice(s, n)));

    /// <inheritdoc />
    public void Mul(Tensor a, Tensor b, Tensor y) =>
        Chunked(y.Numel, (s, n) => TensorPrimitives.Multiply(S(a).Slice(s, n), S(b).Slice(s, n), S(y).Slice(s, n)));

    /// <inheritdoc />
    public void Scale(Tensor x, float alpha, Tensor y) =>
        Chunked(y.Numel, (s, n) => TensorPrimitives.Multiply(S(x).Slice(s, n), alpha, S(y).Slice(s, n)));
}
