// Thrown when a CUDA library (driver, NVRTC, cuBLAS) cannot be loaded. The message lists every probe made, so
// a user can see at once which folders were searched and why each candidate failed (TorchSharp#1545 lost this).
namespace Slak.Cuda.Interop;

/// <summary>A CUDA library could not be loaded from any probed location.</summary>
public sealed class CudaLibraryNotFoundException : Exception
{
    /// <summary>Creates the exception for <paramref name="library"/> (looked for under the file names
    /// <paramref name="candidates"/>) with the probe trace.</summary>
    public CudaLibraryNotFoundException(string library, IReadOnlyList<string> candidates, IReadOnlyList<string> probes)
        : base(BuildMessage(library, probes))
    {
        Library = library;
        Candidates = candidates;
        Probes = probes;
    }

    /// <summary>The file names looked for.</summary>
    public IReadOnlyList<string> Candidates { get; }

    /// <summary>Which library failed ("CUDA driver", "NVRTC", "cuBLAS").</summary>
    public string Library { get; }

    /// <summary>One line per probe: the candidate and the outcome.</summary>
    public IReadOnlyList<string> Probes { get; }

    /// <summary>A one-line summary (for <c>slak info</c> and availability checks).</summary>
    public string Summary =>
        $"{Library} library not found (no loadable {string.Join(" or ", Candidates)} in {Probes.Count} probes; " +
        "set SLAK_CUDA_LIBRARY_PATH to its folder)";

    private static string BuildMessage(string library, IReadOnlyList<string> probes)
    {
        var sb = new System.Text.StringBuilder();
        sb.Append($"Could not load the {library} library. Set SLAK_CUDA_LIBRARY_PATH to the folder that holds it. ");
        sb.Append($"Probes ({probes.Count}):");
        foreach (string p in probes)
        {
            sb.Append("\n  ").Append(p);
        }

        return sb.ToString();
    }
}
