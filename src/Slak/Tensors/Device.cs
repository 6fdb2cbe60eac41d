// Where a tensor lives: "cpu", "cuda:N" (a real GPU) or "cuda-emu" (the CUDA backend running the cuda/ kernels on
// the host emulator, used to execute every kernel in CI on machines without a GPU).
namespace Slak;

/// <summary>Kind of device.</summary>
public enum DeviceType
{
    /// <summary>The CPU backend (vectorized, multi-threaded C#).</summary>
    Cpu,
    /// <summary>A CUDA GPU through the driver API and NVRTC-compiled kernels.</summary>
    Cuda,
    /// <summary>The CUDA backend over the host emulator (same kernels, host memory).</summary>
    CudaEmu,
}

/// <summary>A device: type plus ordinal. Parse with <see cref="Parse"/>: "cpu", "cuda", "cuda:1", "cuda-emu".</summary>
public readonly record struct Device(DeviceType Type, int Index = 0)
{
    /// <summary>The CPU.</summary>
    public static readonly Device Cpu = new(DeviceType.Cpu);

    /// <summary>The first CUDA GPU.</summary>
    public static readonly Device Cuda0 = new(DeviceType.Cuda);

    /// <summary>The emulated CUDA device.</summary>
    public static readonly Device CudaEmu = new(DeviceType.CudaEmu);

    /// <summary>True for the CPU backend.</summary>
    public bool IsCpu => Type == DeviceType.Cpu;

    /// <summary>True for devices served by the CUDA backend (real or emulated).</summary>
    public bool IsCudaBackend => Type is DeviceType.Cuda or DeviceType.CudaEmu;

    /// <summary>Parses "cpu", "cuda", "cuda:N", "cuda-emu" (case-insensitive).</summary>
    public static Device Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        string s = spec.Trim().ToLowerInvariant();
        if (s == "cpu") return Cpu;
        if (s is "cuda-emu" or "cuda_emu" or "emu") return CudaEmu;
        if (s == "cuda") return Cuda0;
        if (s.StartsWith("cuda:", StringComparison.Ordinal)
            && int.TryParse(s.AsSpan(5), System.Globalization.NumberStyles.None, null, out int index))
            return new Device(DeviceType.Cuda, index);
        throw new ArgumentException($"unknown device '{spec}' (expected cpu, cuda, cuda:N or cuda-emu)", nameof(spec));
    }

    /// <inheritdoc />
    public override string ToString() => Type switch
    {
        DeviceType.Cpu => "cpu",
        DeviceType.CudaEmu => "cuda-emu",
        _ => $"cuda:{Index}",
    };
}
