// Compiles kernel files with NVRTC: each header passed by name (no include paths), CUBIN for the exact
// architecture when this NVRTC knows it, else PTX for the newest compute_XY it knows (the driver JIT-compiles it).
// Compile errors throw NvrtcCompileException with the full log.
using System.Text;
using Slak.Cuda.Interop;

namespace Slak.Cuda.Compilation;

/// <summary>Compiles the kernel files of a <see cref="KernelSources"/> with NVRTC.</summary>
internal sealed class NvrtcCompiler
{
    private readonly Nvrtc _nvrtc;
    private readonly IReadOnlyList<int> _supportedArchs;

    /// <summary>Creates a compiler over <paramref name="sources"/>; throws
    /// <see cref="CudaLibraryNotFoundException"/> (with the probe trace) when NVRTC cannot be loaded.</summary>
    public NvrtcCompiler(KernelSources sources)
    {
        Sources = sources ?? throw new ArgumentNullException(nameof(sources));
        _nvrtc = Nvrtc.Api;
        Version = _nvrtc.Version();
        _supportedArchs = _nvrtc.SupportedArchs();
    }

    /// <summary>The sources compiled.</summary>
    public KernelSources Sources { get; }

    /// <summary>The NVRTC version (major, minor).</summary>
    public (int Major, int Minor) Version { get; }

    /// <summary>Where NVRTC was loaded from.</summary>
    public string LibraryPath => _nvrtc.Library.Path;

    /// <summary>The sm numbers this NVRTC can produce CUBIN for (empty when it cannot tell).</summary>
    public IReadOnlyList<int> SupportedArchitectures => _supportedArchs;

    /// <summary>True when NVRTC loads; otherwise <paramref name="reason"/> says why in one line.</summary>
    public static bool IsAvailable(out string reason)
    {
        try
        {
            (int major, int minor) = Nvrtc.Api.Version();
            reason = $"NVRTC {major}.{minor} ({Nvrtc.Api.Library.Path})";
            return true;
        }
        catch (CudaLibraryNotFoundException e)
        {
            reason = e.Summary;
            return false;
        }
        catch (EntryPointNotFoundException e)
        {
            reason = e.Message;
            return false;
        }
    }

    /// <summary>Compiles a trivial kernel to CUBIN for the newest architecture this NVRTC supports (at most
    /// sm_90): catches a missing or mismatched libnvrtc-builtins, which only fails at the first compilation
    /// (DotCompute#182). Returns null when it works, else a one-line reason.</summary>
    public static string? SelfTest()
    {
        try
        {
            var sources = new KernelSources(new Dictionary<string, string>
            {
                ["kernels/selftest.cu"] = "extern \"C\" __global__ void slak_selftest_kernel(float* o) { o[threadIdx.x] = 1.0f; }\n",
            });
            var compiler = new NvrtcCompiler(sources);
            int arch = compiler.SupportedArchitectures.Where(a => a <= 90).DefaultIfEmpty(80).Max();
            CompiledModule module = compiler.Compile("kernels/selftest.cu", new CompileOptions(arch / 10, arch % 10));
            return module.Image.Length > 0 ? null : "NVRTC produced an empty image";
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return $"{e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}";
        }
    }

    /// <summary>Decides the target: CUBIN for sm_XY when supported, else PTX for the newest compute_XY not above
    /// the device. Returns (cubin, arch number).</summary>
    public (bool Cubin, int Arch) ChooseTarget(CompileOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        int wanted = options.ArchNumber;
        if (_supportedArchs.Count == 0 || _supportedArchs.Contains(wanted))
        {
            return (!options.ForcePtx, wanted);
        }

        int best = _supportedArchs.Where(a => a <= wanted).DefaultIfEmpty(-1).Max();
        if (best < 0)
        {
            throw new NotSupportedException(
                $"NVRTC {Version.Major}.{Version.Minor} cannot target compute capability {options.Major}.{options.Minor}; " +
                $"it supports sm_{string.Join(", sm_", _supportedArchs)}");
        }

        return (false, best);
    }

    /// <summary>The argument list that <see cref="Compile"/> will use (also part of the cache key).</summary>
    public IReadOnlyList<string> Arguments(CompileOptions options)
    {
        (bool cubin, int arch) = ChooseTarget(options);
        return options.ToArguments(cubin, arch);
    }

    /// <summary>Compiles kernel file <paramref name="file"/> (a path relative to cuda/).</summary>
    public unsafe CompiledModule Compile(string file, CompileOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (file is null || !Sources.Files.TryGetValue(file, out string? source))
        {
            throw new ArgumentException($"'{file}' is not a file of the CUDA sources", nameof(file));
        }

        (bool cubin, int arch) = ChooseTarget(options);
        IReadOnlyList<string> args = options.ToArguments(cubin, arch);
        IReadOnlyList<(string IncludeName, string Text)> headers = Sources.Headers();

        using var pinned = new Utf8Strings();
        byte* src = pinned.Add(source);
        byte* name = pinned.Add(file);
        byte** headerTexts = pinned.AddArray(headers.Select(h => h.Text).ToList());
        byte** headerNames = pinned.AddArray(headers.Select(h => h.IncludeName).ToList());
        byte** argv = pinned.AddArray(args);

        nint program;
        NvrtcException.ThrowIfFailed(
            _nvrtc.nvrtcCreateProgram(&program, src, name, headers.Count, headerTexts, headerNames));
        try
        {
            NvrtcResult compiled = _nvrtc.nvrtcCompileProgram(program, args.Count, argv);
            string log = ReadLog(program);
            if (compiled == NvrtcResult.ErrorCompilation)
            {
                throw new NvrtcCompileException(file, args, log);
            }

            NvrtcException.ThrowIfFailed(compiled);
            byte[] image = cubin ? ReadCubin(program) : ReadPtx(program);
            return new CompiledModule(file, cubin ? $"sm_{arch}" : $"compute_{arch}", cubin, image, log);
        }
        finally
        {
            _nvrtc.nvrtcDestroyProgram(&program);
        }
    }

    private unsafe string ReadLog(nint program)
    {
        nuint size;
        NvrtcException.ThrowIfFailed(_nvrtc.nvrtcGetProgramLogSize(program, &size));
        var bytes = new byte[(int)size];
        fixed (byte* p = bytes)
        {
            NvrtcException.ThrowIfFailed(_nvrtc.nvrtcGetProgramLog(program, p));
        }

        return Encoding.UTF8.GetString(bytes).TrimEnd('\0');
    }

    private unsafe byte[] ReadCubin(nint program)
    {
        nuint size;
        NvrtcException.ThrowIfFailed(_nvrtc.nvrtcGetCUBINSize(program, &size));
        var bytes = new byte[(int)size];
        fixed (byte* p = bytes)
        {
            NvrtcException.ThrowIfFailed(_nvrtc.nvrtcGetCUBIN(program, p));
        }

        return bytes;
    }

    private unsafe byte[] ReadPtx(nint program)
    {
        nuint size;
        NvrtcException.ThrowIfFailed(_nvrtc.nvrtcGetPTXSize(program, &size));
        var bytes = new byte[(int)size];
        fixed (byte* p = bytes)
        {
            NvrtcException.ThrowIfFailed(_nvrtc.nvrtcGetPTX(program, p));
        }

        return bytes;
    }
}
