// The text behind `slak info`: driver, NVRTC and cuBLAS versions and where they were loaded from, each device
// with memory and compute capability, the kernel cache folder, and, when CUDA is unusable, why (one line).
// Never throws: every probe failure becomes a line of the report.
using System.Text;
using Slak.Cuda.Compilation;
using Slak.Cuda.Interop;

namespace Slak.Cuda.Runtime;

/// <summary>Describes the CUDA installation for <c>slak info</c>.</summary>
public static unsafe class CudaInfo
{
    /// <summary>A multi-line report; the first line says whether CUDA is available (and why not).</summary>
    public static string Describe()
    {
        var sb = new StringBuilder();
        bool available = GpuDevices.IsCudaAvailable(out string reason);
        sb.AppendLine(available ? $"CUDA:         available ({reason})" : $"CUDA:         unavailable: {reason}");
        sb.AppendLine($"Driver:       {Safe(DescribeDriver)}");
        sb.AppendLine($"NVRTC:        {Safe(DescribeNvrtc)}");
        sb.AppendLine($"cuBLAS:       {Safe(DescribeCublas)}");
        if (available)
        {
            sb.Append(Safe(DescribeDevices));
        }

        sb.AppendLine($"Kernel cache: {Safe(() => KernelCache.DefaultDirectory())}");
        sb.AppendLine($"Kernels:      {Safe(() => $"{KernelSources.Embedded.KernelToFile.Count} in {KernelSources.Embedded.KernelFiles.Count} files")}");
        return sb.ToString();
    }

    /// <summary>The driver's CUDA version as "12.4", e.g. for error messages.</summary>
    internal static string DriverVersion(Driver api)
    {
        int v;
        return api.cuDriverGetVersion(&v) == CuResult.Success ? $"{v / 1000}.{v % 1000 / 10}" : "unknown";
    }

    private static string DescribeDriver()
    {
        try
        {
            Driver api = Driver.Api;
            return $"CUDA {DriverVersion(api)} ({api.Library.Path})";
        }
        catch (CudaLibraryNotFoundException e)
        {
            return e.Summary;
        }
    }

    private static string DescribeNvrtc()
    {
        try
        {
            Nvrtc api = Nvrtc.Api;
            (int major, int minor) = api.Version();
            IReadOnlyList<int> archs = api.SupportedArchs();
            string range = archs.Count == 0 ? "" : $", sm_{archs.Min()}..sm_{archs.Max()}";
            string check = NvrtcCompiler.SelfTest() is { } problem ? $"; self-test FAILED: {problem}" : "; self-test OK";
            return $"{major}.{minor} ({api.Library.Path}{range}{check})";
        }
        catch (CudaLibraryNotFoundException e)
        {
            return e.Summary;
        }
    }

    private static string DescribeCublas()
    {
        try
        {
            Cublas api = Cublas.Api;
            return $"{api.VersionString()} ({api.Library.Path})";
        }
        catch (CudaLibraryNotFoundException e)
        {
            return e.Summary;
        }
    }

    private static string DescribeDevices()
    {
        Driver api = Driver.Api;
        int count = GpuDevices.DeviceCount(out _);
        var sb = new StringBuilder();
        byte* name = stackalloc byte[256];
        for (int i = 0; i < count; i++)
        {
            int device, major, minor, sms;
            nuint total;
            CudaException.ThrowIfFailed(api.cuDeviceGet(&device, i));
            CudaException.ThrowIfFailed(api.cuDeviceGetName(name, 256, device));
            CudaException.ThrowIfFailed(api.cuDeviceGetAttribute(&major, CuDeviceAttribute.ComputeCapabilityMajor, device));
            CudaException.ThrowIfFailed(api.cuDeviceGetAttribute(&minor, CuDeviceAttribute.ComputeCapabilityMinor, device));
            CudaException.ThrowIfFailed(api.cuDeviceGetAttribute(&sms, CuDeviceAttribute.MultiprocessorCount, device));
            CudaException.ThrowIfFailed(api.cuDeviceTotalMem_v2(&total, device));
            sb.AppendLine($"Device cuda:{i}: {Driver.Utf8(name)}, {(double)total / (1L << 30):F1} GiB, " +
                          $"compute capability {major}.{minor}, {sms} SMs");
        }

        return sb.ToString();
    }

    private static string Safe(Func<string> describe)
    {
        try
        {
            return describe();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return $"error: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}";
        }
    }
}
