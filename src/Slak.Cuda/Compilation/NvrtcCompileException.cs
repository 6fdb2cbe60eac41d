// A kernel file failed to compile. Holds the FULL NVRTC log and the file name (managedCuda's Compile throws
// without the log; tinygrad's nvrtc_check shows why the log is the one thing the user needs).
namespace Slak.Cuda.Compilation;

/// <summary>NVRTC rejected a kernel file.</summary>
public sealed class NvrtcCompileException : Exception
{
    /// <summary>Creates the exception for <paramref name="file"/> with the full compiler log.</summary>
    public NvrtcCompileException(string file, IReadOnlyList<string> options, string log)
        : base($"NVRTC failed to compile '{file}' (options: {string.Join(' ', options)}). Full log:\n{log}")
    {
        FileName = file;
        Options = options;
        Log = log;
    }

    /// <summary>The kernel file (relative to cuda/).</summary>
    public string FileName { get; }

    /// <summary>The NVRTC options used.</summary>
    public IReadOnlyList<string> Options { get; }

    /// <summary>The full NVRTC program log.</summary>
    public string Log { get; }
}
