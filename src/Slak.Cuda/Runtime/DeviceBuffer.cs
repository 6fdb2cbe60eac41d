// Typed device memory for users of the kernel API: a length, an element type and the device it lives on, with
// checked copies from and to spans (the length must match; a disposed buffer says so). The kernel entry points
// (DecomposedDwConv) take DeviceBuffer<float> and check lengths against the shape before any launch, so a wrong
// argument is an ArgumentException naming it, never a fault in a kernel. DevicePtr stays the launchers' raw currency
// inside the library.
using System.Runtime.InteropServices;

namespace Slak.Cuda.Runtime;

/// <summary>A buffer of <see cref="Length"/> elements of <typeparamref name="T"/> on a GPU (or the emulator).</summary>
/// <typeparam name="T">An unmanaged element type (float for the convolution kernels).</typeparam>
public sealed class DeviceBuffer<T> : IDisposable where T : unmanaged
{
    private DevicePtr _ptr;

    /// <summary>Allocates <paramref name="length"/> elements (contents undefined) on
    /// <paramref name="device"/>.</summary>
    public DeviceBuffer(GpuDevice device, long length)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Device = device;
        Length = length;
        long bytes = checked(length * Marshal.SizeOf<T>());
        // A zero-length buffer still owns a (minimal) allocation, so it has a valid address.
        _ptr = device.Inner.Allocate(Math.Max(bytes, 1));
    }

    /// <summary>A new buffer holding a copy of <paramref name="data"/>.</summary>
    public static DeviceBuffer<T> FromSpan(GpuDevice device, ReadOnlySpan<T> data)
    {
        var buffer = new DeviceBuffer<T>(device, data.Length);
        buffer.CopyFrom(data);
        return buffer;
    }

    /// <summary>The device the memory lives on.</summary>
    public GpuDevice Device { get; }

    /// <summary>Number of elements.</summary>
    public long Length { get; }

    /// <summary>The element type.</summary>
    public Type ElementType => typeof(T);

    /// <summary>Size in bytes.</summary>
    public long Bytes => Length * Marshal.SizeOf<T>();

    /// <summary>True after <see cref="Dispose"/>.</summary>
    public bool IsDisposed => _ptr.IsNull;

    /// <summary>The device address (for the library's launchers); throws when disposed.</summary>
    internal DevicePtr Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(IsDisposed, this);
            return _ptr;
        }
    }

    /// <summary>Copies <paramref name="source"/> (exactly <see cref="Length"/> elements) to the device.</summary>
    public void CopyFrom(ReadOnlySpan<T> source)
    {
        CheckLength(source.Length, nameof(source));
        Device.Inner.CopyToDevice(MemoryMarshal.AsBytes(source), Pointer);
    }

    /// <summary>Copies the buffer into <paramref name="destination"/> (exactly <see cref="Length"/> elements), after
    /// the work queued on the device has finished.</summary>
    public void CopyTo(Span<T> destination)
    {
        CheckLength(destination.Length, nameof(destination));
        Device.Inner.CopyToHost(Pointer, MemoryMarshal.AsBytes(destination));
    }

    /// <summary>The contents as a new array.</summary>
    public T[] ToArray()
    {
        var result = new T[Length];
        CopyTo(result);
        return result;
    }

    /// <summary>Sets every 32-bit element to <paramref name="value"/>'s bits (T must be 4 bytes wide).</summary>
    public void Fill(T value)
    {
        if (Marshal.SizeOf<T>() != 4)
            throw new NotSupportedException($"DeviceBuffer<{typeof(T).Name}>.Fill supports 4-byte elements only");
        uint bits = MemoryMarshal.Cast<T, uint>(MemoryMarshal.CreateReadOnlySpan(ref value, 1))[0];
        Device.Inner.Memset32(Pointer, bits, Length);
    }

    private void CheckLength(int given, string name)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        if (given != Length)
            throw new ArgumentException($"{name} has {given} elements; this DeviceBuffer<{typeof(T).Name}> has {Length}", name);
    }

    /// <summary>Returns the memory to the device's allocator (idempotent).</summary>
    public void Dispose()
    {
        var p = _ptr;
        _ptr = DevicePtr.Null;
        if (!p.IsNull) Device.Inner.Free(p);
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"DeviceBuffer<{typeof(T).Name}>({Length}, {Device.Name}{(IsDisposed ? ", disposed" : "")})";
}
