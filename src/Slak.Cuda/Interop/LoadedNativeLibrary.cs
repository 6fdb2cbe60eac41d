// A loaded native library and its symbol lookup. Missing required symbols fail with the library path and the
// symbol name (e.g. an old driver without a _v2 entry), instead of an EntryPointNotFoundException at first call.
using System.Runtime.InteropServices;

namespace Slak.Cuda.Interop;

/// <summary>A native library loaded by <see cref="NativeLibraryProbe"/>. Never unloaded: CUDA libraries stay
/// mapped for the life of the process (unloading libcuda with live contexts crashes).</summary>
internal sealed class LoadedNativeLibrary(string display, string path, nint handle, IReadOnlyList<string> probes)
{
    /// <summary>"CUDA driver", "NVRTC" or "cuBLAS".</summary>
    public string Display { get; } = display;

    /// <summary>The name or path that loaded.</summary>
    public string Path { get; } = path;

    /// <summary>The OS handle.</summary>
    public nint Handle { get; } = handle;

    /// <summary>The probes made before (and including) the successful one.</summary>
    public IReadOnlyList<string> Probes { get; } = probes;

    /// <summary>The address of a required export; throws naming the symbol and library when absent.</summary>
    public nint Require(string symbol)
    {
        if (NativeLibrary.TryGetExport(Handle, symbol, out nint address))
        {
            return address;
        }

        throw new EntryPointNotFoundException(
            $"{Display} library '{Path}' has no export '{symbol}' (library too old for Slak?)");
    }

    /// <summary>The address of an optional export, or 0.</summary>
    public nint Optional(string symbol) => NativeLibrary.TryGetExport(Handle, symbol, out nint address) ? address : 0;

    /// <summary>The first of several alternative exports that exists (e.g. a _v2 entry and its older name).</summary>
    public nint RequireAny(params string[] symbols)
    {
        foreach (string s in symbols)
        {
            if (Optional(s) is var a and not 0)
            {
                return a;
            }
        }

        throw new EntryPointNotFoundException(
            $"{Display} library '{Path}' has none of the exports {string.Join(", ", symbols)}");
    }
}
