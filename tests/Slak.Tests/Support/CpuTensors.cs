// Tensors for the CPU kernel tests: inputs copied from test data (the kernel under test never writes the caller's
// array) and outputs poisoned with NaN before a call, so a value the kernel does not write shows up.

namespace Slak.Tests.Support;

/// <summary>Input and poisoned output tensors on the CPU device.</summary>
internal static class CpuTensors
{
    /// <summary>A CPU tensor over a copy of <paramref name="data"/>.</summary>
    public static Tensor CpuCopy(float[] data, params int[] shape) =>
        Tensor.FromArray((float[])data.Clone(), shape, Device.Cpu);

    /// <summary>A CPU tensor of NaN (an output to be overwritten).</summary>
    public static Tensor Nan(params int[] shape) => Tensor.Full(shape, float.NaN, Device.Cpu);
}
