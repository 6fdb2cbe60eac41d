// The native CUDA libraries Slak binds, and the file names probed for each (versioned names first: runtime
// containers often carry only libfoo.so.N without the unversioned development link, managedCuda#116).
namespace Slak.Cuda.Interop;

/// <summary>A native CUDA library that Slak loads at run time.</summary>
internal enum CudaLibraryKind
{
    Driver,
    Nvrtc,
    Cublas,
}

/// <summary>Display names and candidate file names per library, per operating system.</summary>
internal static class CudaLibraryNames
{
    public static string Display(CudaLibraryKind kind) => kind switch
    {
        CudaLibraryKind.Driver => "CUDA driver",
        CudaLibraryKind.Nvrtc => "NVRTC",
        CudaLibraryKind.Cublas => "cuBLAS",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown CUDA library kind"),
    };

    public static IReadOnlyList<string> Candidates(CudaLibraryKind kind)
    {
        if (OperatingSystem.IsWindows())
        {
            return kind switch
            {
                CudaLibraryKind.Driver => ["nvcuda.dll"],
                CudaLibraryKind.Nvrtc => ["nvrtc64_130_0.dll", "nvrtc64_120_0.dll", "nvrtc64_112_0.dll"],
                CudaLibraryKind.Cublas => ["cublas64_13.dll", "cublas64_12.dll", "cublas64_11.dll"],
                _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown CUDA library kind"),
            };
        }

        return kind switch
        {
            CudaLibraryKind.Driver => ["libcuda.so.1", "libcuda.so"],
            CudaLibraryKind.Nvrtc => ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"],
            CudaLibraryKind.Cublas => ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"],
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown CUDA library kind"),
        };
    }
}
