// NVRTC bound 1:1 as unmanaged function pointers (see Driver.cs for the conventions). The newest NVRTC found
// is used (libnvrtc.so.13, .12, .11.2): kernels are compiled to CUBIN for the exact device, so a newer NVRTC than
// the driver is harmless, unlike PTX (CUDA_ERROR_UNSUPPORTED_PTX_VERSION, libCEED#1587).
namespace Slak.Cuda.Interop;

/// <summary>The NVRTC entry points Slak uses.</summary>
internal sealed unsafe class Nvrtc
{
    private static readonly Lazy<Nvrtc> Shared = new(() => new Nvrtc(NativeLibraryProbe.Load(CudaLibraryKind.Nvrtc)));

    public readonly delegate* unmanaged<int*, int*, NvrtcResult> nvrtcVersion;
    public readonly delegate* unmanaged<nint*, byte*, byte*, int, byte**, byte**, NvrtcResult> nvrtcCreateProgram;
    public readonly delegate* unmanaged<nint, int, byte**, NvrtcResult> nvrtcCompileProgram;
    public readonly delegate* unmanaged<nint, nuint*, NvrtcResult> nvrtcGetProgramLogSize;
    public readonly delegate* unmanaged<nint, byte*, NvrtcResult> nvrtcGetProgramLog;
    public readonly delegate* unmanaged<nint, nuint*, NvrtcResult> nvrtcGetPTXSize;
    public readonly delegate* unmanaged<nint, byte*, NvrtcResult> nvrtcGetPTX;
    public readonly delegate* unmanaged<nint, nuint*, NvrtcResult> nvrtcGetCUBINSize;
    public readonly delegate* unmanaged<nint, byte*, NvrtcResult> nvrtcGetCUBIN;
    public readonly delegate* unmanaged<nint*, NvrtcResult> nvrtcDestroyProgram;
    public readonly delegate* unmanaged<NvrtcResult, byte*> nvrtcGetErrorString;

    /// <summary>Optional (NVRTC 11.2+): number of supported architectures; null when absent.</summary>
    public readonly delegate* unmanaged<int*, NvrtcResult> nvrtcGetNumSupportedArchs;

    /// <summary>Optional (NVRTC 11.2+): the supported sm numbers (e.g. 80, 90); null when absent.</summary>
    public readonly delegate* unmanaged<int*, NvrtcResult> nvrtcGetSupportedArchs;

    internal Nvrtc(LoadedNativeLibrary lib)
    {
        Library = lib;
        nvrtcVersion = (delegate* unmanaged<int*, int*, NvrtcResult>)lib.Require("nvrtcVersion");
        nvrtcCreateProgram = (delegate* unmanaged<nint*, byte*, byte*, int, byte**, byte**, NvrtcResult>)
            lib.Require("nvrtcCreateProgram");
        nvrtcCompileProgram = (delegate* unmanaged<nint, int, byte**, NvrtcResult>)lib.Require("nvrtcCompileProgram");
        nvrtcGetProgramLogSize = (delegate* unmanaged<nint, nuint*, NvrtcResult>)lib.Require("nvrtcGetProgramLogSize");
        nvrtcGetProgramLog = (delegate* unmanaged<nint, byte*, NvrtcResult>)lib.Require("nvrtcGetProgramLog");
        nvrtcGetPTXSize = (delegate* unmanaged<nint, nuint*, NvrtcResult>)lib.Require("nvrtcGetPTXSize");
        nvrtcGetPTX = (delegate* unmanaged<nint, byte*, NvrtcResult>)lib.Require("nvrtcGetPTX");
        nvrtcGetCUBINSize = (delegate* unmanaged<nint, nuint*, NvrtcResult>)lib.Require("nvrtcGetCUBINSize");
        nvrtcGetCUBIN = (delegate* unmanaged<nint, byte*, NvrtcResult>)lib.Require("nvrtcGetCUBIN");
        nvrtcDestroyProgram = (delegate* unmanaged<nint*, NvrtcResult>)lib.Require("nvrtcDestroyProgram");
        nvrtcGetErrorString = (delegate* unmanaged<NvrtcResult, byte*>)lib.Require("nvrtcGetErrorString");
        nvrtcGetNumSupportedArchs = (delegate* unmanaged<int*, NvrtcResult>)lib.Optional("nvrtcGetNumSupportedArchs");
        nvrtcGetSupportedArchs = (delegate* unmanaged<int*, NvrtcResult>)lib.Optional("nvrtcGetSupportedArchs");
    }

    /// <summary>The loaded libnvrtc.</summary>
    public LoadedNativeLibrary Library { get; }

    /// <summary>The process-wide NVRTC binding; throws <see cref="CudaLibraryNotFoundException"/> when
    /// absent.</summary>
    public static Nvrtc Api => Shared.Value;

    /// <summary>"NVRTC_ERROR_COMPILATION" style text for a status.</summary>
    public string Describe(NvrtcResult result)
    {
        byte* s = nvrtcGetErrorString(result);
        return s == null ? $"nvrtcResult {(int)result} ({result})" : Driver.Utf8(s);
    }

    /// <summary>The NVRTC version (major, minor).</summary>
    public (int Major, int Minor) Version()
    {
        int major, minor;
        NvrtcException.ThrowIfFailed(nvrtcVersion(&major, &minor));
        return (major, minor);
    }

    /// <summary>The sm numbers this NVRTC can compile CUBIN for (empty when the library cannot tell).</summary>
    public IReadOnlyList<int> SupportedArchs()
    {
        if (nvrtcGetNumSupportedArchs == null || nvrtcGetSupportedArchs == null)
        {
            return [];
        }

        int count;
        NvrtcException.ThrowIfFailed(nvrtcGetNumSupportedArchs(&count));
        var archs = new int[count];
        fixed (int* p = archs)
        {
            NvrtcException.ThrowIfFailed(nvrtcGetSupportedArchs(p));
        }

        return archs;
    }
}
