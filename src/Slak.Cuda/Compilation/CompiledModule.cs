// The result of compiling one kernel file: the image the driver loads (CUBIN, or NUL-terminated PTX) and the
// compiler log (which carries the ptxas report when PtxasVerbose was set).
namespace Slak.Cuda.Compilation;

/// <summary>A compiled kernel file.</summary>
/// <param name="File">Source path relative to cuda/.</param>
/// <param name="Architecture">"sm_90" for CUBIN, "compute_90" for PTX.</param>
/// <param name="IsCubin">True for a CUBIN image, false for PTX text.</param>
/// <param name="Image">Bytes for cuModuleLoadData (PTX includes its terminating NUL).</param>
/// <param name="Log">The NVRTC program log (warnings, ptxas report).</param>
internal sealed record CompiledModule(string File, string Architecture, bool IsCubin, byte[] Image, string Log)
{
    /// <summary>The ptxas resource report parsed from <see cref="Log"/> (empty unless compiled with -Xptxas
    /// -v).</summary>
    public IReadOnlyList<KernelResources> Resources => PtxasReport.Parse(Log);
}
