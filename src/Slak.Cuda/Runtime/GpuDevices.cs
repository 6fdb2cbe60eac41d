// The factory for devices by name ("cuda", "cuda:N", "cuda-emu") and the one-line availability check used by
// `slak info` and by the CPU fallback of training.
using System.Globalization;
using Slak.Cuda.Interop;

namespace Slak.Cuda.Runtime;

/// <summary>Opens GPU devices by name and tells whether CUDA can be used here.</summary>
public static unsafe class GpuDevices
{
    /// <summary>Opens "cuda" (GPU 0), "cuda:N" or "cuda-emu" (the host emulator). Throws
    /// <see cref="ArgumentException"/> for another name and a <see cref="Interop.CudaException"/> (or
    /// <see cref="Interop.CudaLibraryNotFoundException"/>) when the GPU cannot be opened.</summary>
    public static GpuDevice Open(string spec) => new(OpenDevice(spec));

    /// <summary>As <see cref="Open"/>, the device itself (for the library's launchers and the CUDA backend).</summary>
    internal static IGpuDevice OpenDevice(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        string s = spec.Trim().ToLowerInvariant();
        if (s == "cuda-emu")
        {
            return Emulation.EmulatedDevice.Open();
        }

        if (s == "cuda")
        {
            return CudaDriverDevice.Open(0);
        }

        if (s.StartsWith("cuda:", StringComparison.Ordinal) &&
            int.TryParse(s.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out int ordinal))
        {
            return CudaDriverDevice.Open(ordinal);
        }

        throw new ArgumentException($"unknown device '{spec}': expected cuda, cuda:N or cuda-emu", nameof(spec));
    }

    /// <summary>True when the driver loads, initialises and reports at least one device. Otherwise
    /// <paramref name="reason"/> says why in one line; on success it names the device count.</summary>
    public static bool IsCudaAvailable(out string reason)
    {
        int count = DeviceCount(out string? error);
        if (error is not null)
        {
            reason = error;
            return false;
        }

        if (count == 0)
        {
            reason = "the CUDA driver reports no device";
            return false;
        }

        reason = $"{count} CUDA device{(count == 1 ? "" : "s")}";
        return true;
    }

    /// <summary>Number of CUDA devices (0 when CUDA is unusable; <paramref name="error"/> then says why).</summary>
    public static int DeviceCount(out string? error)
    {
        Driver api;
        try
        {
            api = Driver.Api;
        }
        catch (CudaLibraryNotFoundException e)
        {
            error = $"no NVIDIA driver: {e.Summary}";
            return 0;
        }
        catch (EntryPointNotFoundException e)
        {
            error = $"unusable NVIDIA driver: {e.Message}";
            return 0;
        }

        CuResult r = api.cuInit(0);
        if (r != CuResult.Success)
        {
            error = $"cuInit failed: {api.Describe(r)}";
            return 0;
        }

        int count;
        r = api.cuDeviceGetCount(&count);
        if (r != CuResult.Success)
        {
            error = $"cuDeviceGetCount failed: {api.Describe(r)}";
            return 0;
        }

        error = null;
        return count;
    }
}
