// Bindings to libslak_emu.so, the host emulator built from cuda/ by CMake (see CMakeLists.txt).
// The library is loaded explicitly (not through DllImport probing) so that a missing or stale build gives one message
// listing every path tried, and so that no DllImportResolver is registered (the CUDA interop owns that hook).
using System.Runtime.InteropServices;

namespace Slak.Cuda.Emulation;

internal static unsafe class EmuNative
{
    /// <summary>File name of the emulator library, next to the assemblies.</summary>
    internal const string LibraryFileName = "libslak_emu.so";

    /// <summary>ABI version this binding expects from slak_emu_version().</summary>
    internal const int ExpectedVersion = 2;

    private static readonly Lazy<Api> s_api = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);

    internal static Api Library => s_api.Value;

    internal sealed class Api
    {
        public required string Path { get; init; }
        public required delegate* unmanaged<int> Version { get; init; }
        public required delegate* unmanaged<byte*> LastError { get; init; }
        public required delegate* unmanaged<int> KernelCount { get; init; }
        public required delegate* unmanaged<int, byte*> KernelName { get; init; }
        public required delegate* unmanaged<byte*, nint*, int> FindKernel { get; init; }
        public required delegate* unmanaged<nint, int> KernelArity { get; init; }
        public required delegate* unmanaged<ulong> LaunchCount { get; init; }
        public required delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint*, int> Launch
        { get; init; }
        public required delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint*, LaunchOptions*, int>
            LaunchEx { get; init; }
        public required delegate* unmanaged<ulong> LastLaunchBlocks { get; init; }
        public required delegate* unmanaged<ulong> LastFaultAddress { get; init; }
        public required delegate* unmanaged<nint, long> KernelStaticShared { get; init; }
        public required delegate* unmanaged<nint, int> KernelMaxThreads { get; init; }
        public required delegate* unmanaged<ulong, nint> Map { get; init; }
        public required delegate* unmanaged<nint, ulong, int> Unmap { get; init; }

        /// <summary>The last error message of this host thread.</summary>
        public string LastErrorMessage() => Marshal.PtrToStringUTF8((nint)LastError()) ?? "";
    }

    private static IEnumerable<string> Candidates()
    {
        if (Environment.GetEnvironmentVariable("SLAK_EMU_LIBRARY") is { Length: > 0 } fromEnv)
            yield return fromEnv;
        yield return System.IO.Path.Combine(AppContext.BaseDirectory, LibraryFileName);
        yield return System.IO.Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native",
                                            LibraryFileName);
    }

    private static Api Load()
    {
        var probes = new List<string>();
        foreach (var path in Candidates().Distinct())
        {
            if (!File.Exists(path))
            {
                probes.Add($"{path}: not found");
                continue;
            }
            if (!NativeLibrary.TryLoad(path, out var handle))
            {
                probes.Add($"{path}: exists but could not be loaded");
                continue;
            }
            var api = Bind(path, handle);
            var version = api.Version();
            if (version != ExpectedVersion)
                throw new InvalidOperationException(
                    $"{path} has emulator ABI version {version}, this Slak.Cuda expects {ExpectedVersion}; rebuild");
            return api;
        }
        throw new DllNotFoundException(
            $"The CUDA host emulator ({LibraryFileName}) could not be loaded; it is built by `dotnet build` with " +
            $"cmake and g++. Probes: {string.Join("; ", probes)}");
    }

    private static Api Bind(string path, nint h) => new()
    {
        Path = path,
        Version = (delegate* unmanaged<int>)Export(h, path, "slak_emu_version"),
        LastError = (delegate* unmanaged<byte*>)Export(h, path, "slak_emu_last_error"),
        KernelCount = (delegate* unmanaged<int>)Export(h, path, "slak_emu_kernel_count"),
        KernelName = (delegate* unmanaged<int, byte*>)Export(h, path, "slak_emu_kernel_name"),
        FindKernel = (delegate* unmanaged<byte*, nint*, int>)Export(h, path, "slak_emu_find_kernel"),
        KernelArity = (delegate* unmanaged<nint, int>)Export(h, path, "slak_emu_kernel_arity"),
        LaunchCount = (delegate* unmanaged<ulong>)Export(h, path, "slak_emu_launch_count"),
        Launch = (delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint*, int>)
            Export(h, path, "slak_emu_launch"),
        LaunchEx = (delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint*, LaunchOptions*, int>)
            Export(h, path, "slak_emu_launch_ex"),
        LastLaunchBlocks = (delegate* unmanaged<ulong>)Export(h, path, "slak_emu_last_launch_blocks"),
        LastFaultAddress = (delegate* unmanaged<ulong>)Export(h, path, "slak_emu_last_fault_address"),
        KernelStaticShared = (delegate* unmanaged<nint, long>)Export(h, path, "slak_emu_kernel_static_shared"),
        KernelMaxThreads = (delegate* unmanaged<nint, int>)Export(h, path, "slak_emu_kernel_max_threads"),
        Map = (delegate* unmanaged<ulong, nint>)Export(h, path, "slak_emu_map"),
        Unmap = (delegate* unmanaged<nint, ulong, int>)Export(h, path, "slak_emu_unmap"),
    };

    /// <summary>slak_emu_launch_options of slak_emu_launch.cpp (field for field).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct LaunchOptions
    {
        public uint Size;
        public uint Flags;
        public ulong Seed;
        public uint* Blocks;
        public int BlockCount;
        public int* ArgSizes;
        public int ArgCount;
    }

    private static nint Export(nint handle, string path, string name) =>
        NativeLibrary.TryGetExport(handle, name, out var address)
            ? address
            : throw new EntryPointNotFoundException($"{path} lacks the export {name}; rebuild it");
}
