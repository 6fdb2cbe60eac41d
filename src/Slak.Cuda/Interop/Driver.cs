// The CUDA driver API, bound 1:1 (C names, C argument order) as unmanaged function pointers resolved from
// libcuda once per process. Only blittable types cross: strings are UTF-8 byte pointers, CUdeviceptr is ulong,
// size_t is nuint, handles are nint. OO wrappers live in Runtime/; this layer could be swapped for ManagedCuda's
// DriverAPINativeMethods without touching them.
namespace Slak.Cuda.Interop;

/// <summary>The CUDA driver API entry points Slak uses.</summary>
internal sealed unsafe class Driver
{
    private static readonly Lazy<Driver> Shared = new(() => new Driver(NativeLibraryProbe.Load(CudaLibraryKind.Driver)));

    public readonly delegate* unmanaged<uint, CuResult> cuInit;
    public readonly delegate* unmanaged<int*, CuResult> cuDriverGetVersion;
    public readonly delegate* unmanaged<int*, CuResult> cuDeviceGetCount;
    public readonly delegate* unmanaged<int*, int, CuResult> cuDeviceGet;
    public readonly delegate* unmanaged<byte*, int, int, CuResult> cuDeviceGetName;
    public readonly delegate* unmanaged<int*, CuDeviceAttribute, int, CuResult> cuDeviceGetAttribute;
    public readonly delegate* unmanaged<nuint*, int, CuResult> cuDeviceTotalMem_v2;
    public readonly delegate* unmanaged<nint*, int, CuResult> cuDevicePrimaryCtxRetain;
    public readonly delegate* unmanaged<int, CuResult> cuDevicePrimaryCtxRelease_v2;
    public readonly delegate* unmanaged<nint, CuResult> cuCtxSetCurrent;
    public readonly delegate* unmanaged<nint*, CuResult> cuCtxGetCurrent;
    public readonly delegate* unmanaged<CuResult> cuCtxSynchronize;
    public readonly delegate* unmanaged<ulong*, nuint, CuResult> cuMemAlloc_v2;
    public readonly delegate* unmanaged<ulong, CuResult> cuMemFree_v2;
    public readonly delegate* unmanaged<nuint*, nuint*, CuResult> cuMemGetInfo_v2;
    public readonly delegate* unmanaged<ulong, uint, nuint, nint, CuResult> cuMemsetD32Async;
    public readonly delegate* unmanaged<ulong, void*, nuint, CuResult> cuMemcpyHtoD_v2;
    public readonly delegate* unmanaged<void*, ulong, nuint, CuResult> cuMemcpyDtoH_v2;
    public readonly delegate* unmanaged<ulong, ulong, nuint, CuResult> cuMemcpyDtoD_v2;
    public readonly delegate* unmanaged<ulong, void*, nuint, nint, CuResult> cuMemcpyHtoDAsync_v2;
    public readonly delegate* unmanaged<void*, ulong, nuint, nint, CuResult> cuMemcpyDtoHAsync_v2;
    public readonly delegate* unmanaged<ulong, ulong, nuint, nint, CuResult> cuMemcpyDtoDAsync_v2;
    public readonly delegate* unmanaged<void**, nuint, uint, CuResult> cuMemHostAlloc;
    public readonly delegate* unmanaged<void*, CuResult> cuMemFreeHost;
    public readonly delegate* unmanaged<nint*, uint, CuResult> cuStreamCreate;
    public readonly delegate* unmanaged<nint, CuResult> cuStreamDestroy_v2;
    public readonly delegate* unmanaged<nint, CuResult> cuStreamSynchronize;
    public readonly delegate* unmanaged<nint*, uint, CuResult> cuEventCreate;
    public readonly delegate* unmanaged<nint, nint, CuResult> cuEventRecord;
    public readonly delegate* unmanaged<nint, CuResult> cuEventSynchronize;
    public readonly delegate* unmanaged<float*, nint, nint, CuResult> cuEventElapsedTime;
    public readonly delegate* unmanaged<nint, CuResult> cuEventDestroy_v2;
    public readonly delegate* unmanaged<nint*, void*, CuResult> cuModuleLoadData;
    public readonly delegate* unmanaged<nint, CuResult> cuModuleUnload;
    public readonly delegate* unmanaged<nint*, nint, byte*, CuResult> cuModuleGetFunction;
    public readonly delegate* unmanaged<int*, CuFunctionAttribute, nint, CuResult> cuFuncGetAttribute;
    public readonly delegate* unmanaged<nint, CuFunctionAttribute, int, CuResult> cuFuncSetAttribute;
    public readonly delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, CuResult>
        cuLaunchKernel;
    public readonly delegate* unmanaged<CuResult, byte**, CuResult> cuGetErrorName;
    public readonly delegate* unmanaged<CuResult, byte**, CuResult> cuGetErrorString;

    private Driver(LoadedNativeLibrary lib)
    {
        Library = lib;
        cuInit = (delegate* unmanaged<uint, CuResult>)lib.Require("cuInit");
        cuDriverGetVersion = (delegate* unmanaged<int*, CuResult>)lib.Require("cuDriverGetVersion");
        cuDeviceGetCount = (delegate* unmanaged<int*, CuResult>)lib.Require("cuDeviceGetCount");
        cuDeviceGet = (delegate* unmanaged<int*, int, CuResult>)lib.Require("cuDeviceGet");
        cuDeviceGetName = (delegate* unmanaged<byte*, int, int, CuResult>)lib.Require("cuDeviceGetName");
        cuDeviceGetAttribute =
            (delegate* unmanaged<int*, CuDeviceAttribute, int, CuResult>)lib.Require("cuDeviceGetAttribute");
        cuDeviceTotalMem_v2 = (delegate* unmanaged<nuint*, int, CuResult>)lib.Require("cuDeviceTotalMem_v2");
        cuDevicePrimaryCtxRetain = (delegate* unmanaged<nint*, int, CuResult>)lib.Require("cuDevicePrimaryCtxRetain");
        cuDevicePrimaryCtxRelease_v2 = (delegate* unmanaged<int, CuResult>)lib.RequireAny(
            "cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease");
        cuCtxSetCurrent = (delegate* unmanaged<nint, CuResult>)lib.Require("cuCtxSetCurrent");
        cuCtxGetCurrent = (delegate* unmanaged<nint*, CuResult>)lib.Require("cuCtxGetCurrent");
        cuCtxSynchronize = (delegate* unmanaged<CuResult>)lib.Require("cuCtxSynchronize");
        cuMemAlloc_v2 = (delegate* unmanaged<ulong*, nuint, CuResult>)lib.Require("cuMemAlloc_v2");
        cuMemFree_v2 = (delegate* unmanaged<ulong, CuResult>)lib.Require("cuMemFree_v2");
        cuMemGetInfo_v2 = (delegate* unmanaged<nuint*, nuint*, CuResult>)lib.Require("cuMemGetInfo_v2");
        cuMemsetD32Async = (delegate* unmanaged<ulong, uint, nuint, nint, CuResult>)lib.Require("cuMemsetD32Async");
        cuMemcpyHtoD_v2 = (delegate* unmanaged<ulong, void*, nuint, CuResult>)lib.Require("cuMemcpyHtoD_v2");
        cuMemcpyDtoH_v2 = (delegate* unmanaged<void*, ulong, nuint, CuResult>)lib.Require("cuMemcpyDtoH_v2");
        cuMemcpyDtoD_v2 = (delegate* unmanaged<ulong, ulong, nuint, CuResult>)lib.Require("cuMemcpyDtoD_v2");
        cuMemcpyHtoDAsync_v2 =
            (delegate* unmanaged<ulong, void*, nuint, nint, CuResult>)lib.Require("cuMemcpyHtoDAsync_v2");
        cuMemcpyDtoHAsync_v2 =
            (delegate* unmanaged<void*, ulong, nuint, nint, CuResult>)lib.Require("cuMemcpyDtoHAsync_v2");
        cuMemcpyDtoDAsync_v2 =
            (delegate* unmanaged<ulong, ulong, nuint, nint, CuResult>)lib.Require("cuMemcpyDtoDAsync_v2");
        cuMemHostAlloc = (delegate* unmanaged<void**, nuint, uint, CuResult>)lib.Require("cuMemHostAlloc");
        cuMemFreeHost = (delegate* unmanaged<void*, CuResult>)lib.Require("cuMemFreeHost");
        cuStreamCreate = (delegate* unmanaged<nint*, uint, CuResult>)lib.Require("cuStreamCreate");
        cuStreamDestroy_v2 = (delegate* unmanaged<nint, CuResult>)lib.RequireAny("cuStreamDestroy_v2", "cuStreamDestroy");
        cuStreamSynchronize = (delegate* unmanaged<nint, CuResult>)lib.Require("cuStreamSynchronize");
        cuEventCreate = (delegate* unmanaged<nint*, uint, CuResult>)lib.Require("cuEventCreate");
        cuEventRecord = (delegate* unmanaged<nint, nint, CuResult>)lib.Require("cuEventRecord");
        cuEventSynchronize = (delegate* unmanaged<nint, CuResult>)lib.Require("cuEventSynchronize");
        cuEventElapsedTime = (delegate* unmanaged<float*, nint, nint, CuResult>)lib.Require("cuEventElapsedTime");
        cuEventDestroy_v2 = (delegate* unmanaged<nint, CuResult>)lib.RequireAny("cuEventDestroy_v2", "cuEventDestroy");
        cuModuleLoadData = (delegate* unmanaged<nint*, void*, CuResult>)lib.Require("cuModuleLoadData");
        cuModuleUnload = (delegate* unmanaged<nint, CuResult>)lib.Require("cuModuleUnload");
        cuModuleGetFunction = (delegate* unmanaged<nint*, nint, byte*, CuResult>)lib.Require("cuModuleGetFunction");
        cuFuncGetAttribute =
            (delegate* unmanaged<int*, CuFunctionAttribute, nint, CuResult>)lib.Require("cuFuncGetAttribute");
        cuFuncSetAttribute =
            (delegate* unmanaged<nint, CuFunctionAttribute, int, CuResult>)lib.Require("cuFuncSetAttribute");
        cuLaunchKernel = (delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**,
            CuResult>)lib.Require("cuLaunchKernel");
        cuGetErrorName = (delegate* unmanaged<CuResult, byte**, CuResult>)lib.Require("cuGetErrorName");
        cuGetErrorString = (delegate* unmanaged<CuResult, byte**, CuResult>)lib.Require("cuGetErrorString");
    }

    /// <summary>The loaded libcuda.</summary>
    public LoadedNativeLibrary Library { get; }

    /// <summary>The process-wide driver binding; throws <see cref="CudaLibraryNotFoundException"/> (with the
    /// probe trace) when libcuda cannot be loaded. A failed load is remembered (Lazy caches the exception).</summary>
    public static Driver Api => Shared.Value;

    /// <summary>"CUDA_ERROR_OUT_OF_MEMORY: out of memory" for a result, or the number when the driver has no
    /// name.</summary>
    public string Describe(CuResult result)
    {
        byte* name = null;
        byte* text = null;
        string n = cuGetErrorName(result, &name) == CuResult.Success && name != null
            ? Utf8(name) : $"CUresult {(int)result}";
        string s = cuGetErrorString(result, &text) == CuResult.Success && text != null ? Utf8(text) : "unknown error";
        return $"{n}: {s}";
    }

    /// <summary>Reads a NUL-terminated UTF-8 string.</summary>
    public static string Utf8(byte* p) =>
        p == null ? string.Empty : System.Runtime.InteropServices.Marshal.PtrToStringUTF8((nint)p) ?? string.Empty;
}
