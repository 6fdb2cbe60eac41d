// One line for `slak info`: the NCCL library found (version and path) or why none loads.
using Slak.Cuda.Interop;

namespace Slak.Cuda.Runtime;

/// <summary>Describes the NCCL library of this machine.</summary>
internal static class NcclInfo
{
    /// <summary>"2.21.5 (path)" or the not-found summary with the number of probes.</summary>
    public static string Describe()
    {
        try
        {
            var api = Nccl.Api;
            return $"{api.VersionString()} ({api.Library.Path}); mpirun training on cuda ranks reduces gradients and SyncBatchNorm statistics with it";
        }
        catch (CudaLibraryNotFoundException e)
        {
            return e.Summary;
        }
    }
}
