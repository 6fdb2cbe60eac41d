// Kernel lookup and launch for CudaDriverDevice. A kernel's source file is compiled (CUBIN for this device's exact
// architecture, through the disk cache) and loaded as one module on the first lookup of any of its kernels.
// Every launch result is checked; with SyncDebug the stream is synchronised after the launch so that an
// asynchronous fault (illegal address, ...) is reported against the kernel that caused it.
using Slak.Cuda.Compilation;
using Slak.Cuda.Interop;

namespace Slak.Cuda.Runtime;

internal sealed unsafe partial class CudaDriverDevice
{
    /// <summary>Shared memory (static + dynamic) a kernel may use without opting in (slak_limits.h).</summary>
    private int DefaultDynamicSharedLimit => DeviceLimits.For(this).SmemPerBlockDefault;

    private readonly Dictionary<string, nint> _modules = new(StringComparer.Ordinal);
    private readonly Dictionary<string, KernelHandle> _kernels = new(StringComparer.Ordinal);
    private readonly Dictionary<nint, int> _dynamicSharedOptIn = [];
    private readonly Dictionary<nint, int> _staticShared = [];
    private NvrtcCompiler? _compiler;

    /// <summary>Extra preprocessor definitions for every kernel compiled by this device (set before the first
    /// kernel lookup).</summary>
    public IReadOnlyList<string> Defines { get; set; } = [];

    /// <inheritdoc />
    public KernelHandle GetKernel(string name) => GetKernel(name, []);

    /// <inheritdoc />
    public KernelHandle GetKernel(string name, IReadOnlyList<string> specialization)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(specialization);
        string key = specialization.Count == 0 ? name : name + "|" + string.Join('|', specialization);
        lock (_lock)
        {
            if (_kernels.TryGetValue(key, out KernelHandle cached))
            {
                return cached;
            }

            Enter();
            string file = Sources.FileOfKernel(name);
            nint module = LoadModule(file, specialization);
            nint function;
            using var utf8 = new Utf8Strings();
            CuResult r = Api.cuModuleGetFunction(&function, module, utf8.Add(name));
            if (r != CuResult.Success)
            {
                throw CudaException.Create(r, "cuModuleGetFunction", $"kernel '{name}' in '{file}'");
            }

            var handle = new KernelHandle(name, function);
            _kernels[key] = handle;
            return handle;
        }
    }

    /// <inheritdoc />
    public void Launch(KernelHandle kernel, Dim3 grid, Dim3 block, int sharedBytes, ReadOnlySpan<nint> args)
    {
        if (kernel.Handle == 0)
        {
            throw new ArgumentException($"kernel handle for '{kernel.Name}' is null (use GetKernel)", nameof(kernel));
        }

        if (grid.Count == 0 || block.Count == 0)
        {
            throw new ArgumentException(
                $"launch of '{kernel.Name}' needs non-empty grid and block, got grid={grid} block={block}", nameof(grid));
        }

        if (sharedBytes < 0 || sharedBytes > Math.Max(MaxSharedMemoryPerBlockOptin, DefaultDynamicSharedLimit))
        {
            throw new ArgumentOutOfRangeException(nameof(sharedBytes), sharedBytes,
                $"dynamic shared memory for '{kernel.Name}' must be in [0, {MaxSharedMemoryPerBlockOptin}]");
        }

        Enter();
        // Without opting in, a kernel may take 48 KB of shared memory in all, static + dynamic: its default maximum
        // of dynamic bytes is 48 KB less its static __shared__ bytes (what the launch plans budget, slak_plan.h).
        if (sharedBytes > 0 && sharedBytes > DefaultDynamicSharedLimit - StaticSharedBytes(kernel))
        {
            OptInDynamicShared(kernel, sharedBytes);
        }

        CuResult r;
        fixed (nint* p = args)
        {
            r = Api.cuLaunchKernel(kernel.Handle, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z,
                (uint)sharedBytes, StreamHandle, (void**)p, null);
        }

        if (r != CuResult.Success)
        {
            throw CudaException.Create(r, "cuLaunchKernel", Describe(kernel, grid, block, sharedBytes, args.Length));
        }

        if (SyncDebug)
        {
            r = Api.cuStreamSynchronize(StreamHandle);
            if (r != CuResult.Success)
            {
                throw CudaException.Create(r, $"cuStreamSynchronize after '{kernel.Name}' ({SyncDebugVariable}=1)",
                    Describe(kernel, grid, block, sharedBytes, args.Length));
            }
        }
    }

    /// <summary>Registers, static shared memory and local memory of a loaded kernel, from the driver.</summary>
    public (int Registers, int SharedBytes, int LocalBytes, int MaxThreadsPerBlock) GetKernelAttributes(KernelHandle kernel)
    {
        Enter();
        return (FunctionAttribute(kernel, CuFunctionAttribute.NumRegs),
                FunctionAttribute(kernel, CuFunctionAttribute.SharedSizeBytes),
                FunctionAttribute(kernel, CuFunctionAttribute.LocalSizeBytes),
                FunctionAttribute(kernel, CuFunctionAttribute.MaxThreadsPerBlock));
    }

    private int FunctionAttribute(KernelHandle kernel, CuFunctionAttribute attribute)
    {
        int value;
        CuResult r = Api.cuFuncGetAttribute(&value, attribute, kernel.Handle);
        if (r != CuResult.Success)
        {
            throw CudaException.Create(r, $"cuFuncGetAttribute({attribute})", $"kernel '{kernel.Name}'");
        }

        return value;
    }

    // The kernel's static __shared__ bytes, read from the driver once per kernel.
    private int StaticSharedBytes(KernelHandle kernel)
    {
        lock (_lock)
        {
            if (_staticShared.TryGetValue(kernel.Handle, out int bytes))
            {
                return bytes;
            }

            bytes = FunctionAttribute(kernel, CuFunctionAttribute.SharedSizeBytes);
            _staticShared[kernel.Handle] = bytes;
            return bytes;
        }
    }

    private void OptInDynamicShared(KernelHandle kernel, int sharedBytes)
    {
        lock (_lock)
        {
            if (_dynamicSharedOptIn.TryGetValue(kernel.Handle, out int current) && current >= sharedBytes)
            {
                return;
            }

            CuResult r = Api.cuFuncSetAttribute(kernel.Handle, CuFunctionAttribute.MaxDynamicSharedSizeBytes, sharedBytes);
            if (r != CuResult.Success)
            {
                throw CudaException.Create(r, "cuFuncSetAttribute(MaxDynamicSharedSizeBytes)",
                    $"kernel '{kernel.Name}' asked for {sharedBytes} bytes of dynamic shared memory");
            }

            _dynamicSharedOptIn[kernel.Handle] = sharedBytes;
        }
    }

    private nint LoadModule(string file, IReadOnlyList<string> specialization)
    {
        string key = specialization.Count == 0 ? file : file + "|" + string.Join('|', specialization);
        if (_modules.TryGetValue(key, out nint module))
        {
            return module;
        }

        _compiler ??= new NvrtcCompiler(Sources);
        var options = new CompileOptions(ComputeCapability.Major, ComputeCapability.Minor)
        {
            Defines = [.. Defines, .. specialization],
        };
        CompiledModule compiled = Cache.GetOrCompile(_compiler, file, options);
        CuResult r;
        fixed (byte* image = compiled.Image)
        {
            r = Api.cuModuleLoadData(&module, image);
        }

        if (r != CuResult.Success)
        {
            throw CudaException.Create(r, "cuModuleLoadData",
                $"'{file}' as {compiled.Architecture} {(compiled.IsCubin ? "CUBIN" : "PTX")} from NVRTC " +
                $"{_compiler.Version.Major}.{_compiler.Version.Minor}, driver {CudaInfo.DriverVersion(Api)}");
        }

        _modules[key] = module;
        return module;
    }

    private void ReleaseKernels()
    {
        foreach (nint module in _modules.Values)
        {
            _ = Api.cuModuleUnload(module);
        }

        _modules.Clear();
        _kernels.Clear();
        _dynamicSharedOptIn.Clear();
        _staticShared.Clear();
    }

    private static string Describe(KernelHandle kernel, Dim3 grid, Dim3 block, int sharedBytes, int argCount) =>
        $"kernel '{kernel.Name}' grid=({grid.X},{grid.Y},{grid.Z}) block=({block.X},{block.Y},{block.Z}) " +
        $"shared={sharedBytes} args={argCount}";
}
