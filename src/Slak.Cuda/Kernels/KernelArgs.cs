// The argument pack of one kernel launch: each Add<T> copies a value of exactly the kernel parameter's type into an
// aligned slot, and Launch hands cuLaunchKernel-style pointers to those slots to the device, with the grid, block and
// shared bytes of a LaunchPlan. T is fixed at compile time at every call site (a DevicePtr, float, int, long or a
// blittable params struct mirroring slak_params.h), so nothing is boxed and nothing is converted behind the caller's
// back. The sizes go with the pointers, so that the emulator checks each one against the kernel's parameter type.
using System.Runtime.CompilerServices;
using Slak.Cuda.Emulation;
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Typed, allocation-free kernel arguments (up to 16 parameters, 1 KiB in all).</summary>
internal unsafe ref struct KernelArgs
{
    private const int Capacity = 16;
    private const int Bytes = 1024;
    private fixed byte _data[Bytes];
    private fixed int _offsets[Capacity];
    private fixed int _sizes[Capacity];
    private fixed long _outputBytes[Capacity];  // > 0: the argument is an output buffer of that many bytes
    private int _count;
    private int _used;

    /// <summary>Appends one argument of unmanaged type <typeparamref name="T"/> (a device pointer is passed as
    /// <see cref="DevicePtr"/>, which has the size of a C pointer).</summary>
    public void Add<T>(T value) where T : unmanaged
    {
        int size = sizeof(T);
        int offset = (_used + 15) & ~15;
        if (_count == Capacity || offset + size > Bytes)
            throw new InvalidOperationException($"kernel argument pack is full ({_count} arguments, {_used} bytes)");
        fixed (byte* d = _data) Unsafe.WriteUnaligned(d + offset, value);
        _sizes[_count] = size;
        _offsets[_count++] = offset;
        _used = offset + size;
    }

    /// <summary>Appends a device pointer to a buffer the kernel fully writes: <paramref name="bytes"/> bytes from
    /// <paramref name="output"/>. On the emulated device with <see cref="EmulatorChecks.UnwrittenOutputs"/>, a word
    /// of it that still holds the poison of fresh device memory after the launch is reported (never written, or
    /// computed from memory nobody wrote).</summary>
    public void AddOutput(DevicePtr output, long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Add(output);
        _outputBytes[_count - 1] = bytes;
    }

    /// <summary>Launches <paramref name="kernel"/> with the arguments added so far.</summary>
    public void Launch(IGpuDevice device, string kernel, Dim3 grid, Dim3 block, int sharedBytes = 0) =>
        Launch(device, kernel, grid, block, sharedBytes, []);

    /// <summary>Launches <paramref name="kernel"/> of the module specialised by <paramref name="specialization"/>
    /// (see <see cref="IGpuDevice.GetKernel(string, IReadOnlyList{string})"/>) with the grid, block and dynamic
    /// shared bytes of <paramref name="plan"/>; nothing when the plan launches nothing.</summary>
    public void Launch(IGpuDevice device, string kernel, in LaunchPlan plan, IReadOnlyList<string> specialization)
    {
        if (plan.KernelChoice == PlanKernel.None) return;
        Launch(device, kernel, plan.Grid, plan.Block, plan.SmemDynamic, specialization);
    }

    private void Launch(IGpuDevice device, string kernel, Dim3 grid, Dim3 block, int sharedBytes,
                        IReadOnlyList<string> specialization)
    {
        if (grid.Count == 0) return;
        nint* pointers = stackalloc nint[Capacity];
        fixed (byte* d = _data)
        fixed (int* sizes = _sizes)
        {
            for (int i = 0; i < _count; i++) pointers[i] = (nint)(d + _offsets[i]);
            var handle = specialization.Count == 0 ? device.GetKernel(kernel) : device.GetKernel(kernel, specialization);
            device.Launch(handle, grid, block, sharedBytes, new ReadOnlySpan<nint>(pointers, _count),
                          new ReadOnlySpan<int>(sizes, _count));
            if (device is EmulatedDevice emulated && (emulated.Checks & EmulatorChecks.UnwrittenOutputs) != 0)
            {
                for (int i = 0; i < _count; i++)
                {
                    if (_outputBytes[i] > 0)
                    {
                        var output = Unsafe.ReadUnaligned<DevicePtr>(d + _offsets[i]);
                        emulated.CheckWritten(kernel, i, output, _outputBytes[i]);
                    }
                }
            }
        }
    }

    /// <summary>Launches <paramref name="kernel"/> with the grid, block and dynamic shared bytes of
    /// <paramref name="plan"/> (see <see cref="LaunchPlans"/>); nothing when the plan launches nothing.</summary>
    public void Launch(IGpuDevice device, string kernel, in LaunchPlan plan)
    {
        if (plan.KernelChoice == PlanKernel.None) return;
        Launch(device, kernel, plan.Grid, plan.Block, plan.SmemDynamic);
    }
}
