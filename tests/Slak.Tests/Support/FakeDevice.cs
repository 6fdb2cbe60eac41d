// A tensor on a device that does not exist, for "wrong device" argument checks on machines with only a CPU: its
// storage reports a backend whose Device is cuda:7 and whose kernels all throw (no operator should reach them,
// because validation must reject the mixed-device call first).
using System.Reflection;
using Slak.Backends;

namespace Slak.Tests.Support;

/// <summary>Tensors on a fake device.</summary>
public static class FakeDevice
{
    /// <summary>The fake device (cuda:7).</summary>
    public static readonly Device Device = new(DeviceType.Cuda, 7);

    private static readonly IBackend Backend = CreateBackend();

    /// <summary>A tensor of <paramref name="shape"/> on the fake device (contents unreadable).</summary>
    public static Tensor Tensor(params int[] shape) => new(new FakeStorage(RefTensor.Numel(shape)), 0, shape);

    private static IBackend CreateBackend()
    {
        var proxy = DispatchProxy.Create<IBackend, FakeBackendProxy>();
        return proxy;
    }

    private sealed class FakeStorage(long length) : Storage(length)
    {
        internal override IBackend Backend => FakeDevice.Backend;

        protected override void Free() { }
    }
}

/// <summary>IBackend proxy: answers Device, throws for every kernel.</summary>
public class FakeBackendProxy : DispatchProxy
{
    /// <inheritdoc />
    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        if (targetMethod?.Name == "get_Device") return FakeDevice.Device;
        throw new InvalidOperationException($"fake device: kernel {targetMethod?.Name} was called; argument validation should have rejected the call");
    }
}
