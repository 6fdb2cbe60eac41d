// NVRTC options for one compilation. The argument list is deterministic (it is part of the cache key) and never
// contains include paths: headers are passed by name (KernelSources.Headers).
namespace Slak.Cuda.Compilation;

/// <summary>Options for compiling one kernel file with NVRTC.</summary>
/// <param name="Major">Target compute capability, major (e.g. 9).</param>
/// <param name="Minor">Target compute capability, minor (e.g. 0).</param>
internal sealed record CompileOptions(int Major, int Minor)
{
    /// <summary>Preprocessor definitions, "NAME" or "NAME=VALUE".</summary>
    public IReadOnlyList<string> Defines { get; init; } = [];

    /// <summary>Ask ptxas for its resource report (<c>-Xptxas -v</c>): registers, spills, stack, shared
    /// memory.</summary>
    public bool PtxasVerbose { get; init; }

    /// <summary>Emit line information for profilers (<c>-lineinfo</c>).</summary>
    public bool LineInfo { get; init; }

    /// <summary>Produce PTX (for compute_XY) even when CUBIN for sm_XY is possible.</summary>
    public bool ForcePtx { get; init; }

    /// <summary>The architecture number, e.g. 90 for compute capability 9.0.</summary>
    public int ArchNumber => Major * 10 + Minor;

    /// <summary>Validates and returns the NVRTC argument list for CUBIN (sm_N) or PTX (compute_N).</summary>
    public IReadOnlyList<string> ToArguments(bool cubin, int archNumber)
    {
        if (Major is < 3 or > 20 || Minor is < 0 or > 9)
        {
            throw new ArgumentException($"compute capability must look like 8.0 or 9.0, got {Major}.{Minor}", nameof(Major));
        }

        if (archNumber is < 30 or > 209)
        {
            throw new ArgumentOutOfRangeException(nameof(archNumber), archNumber, "architecture number out of range");
        }

        var args = new List<string>
        {
            cubin ? $"--gpu-architecture=sm_{archNumber}" : $"--gpu-architecture=compute_{archNumber}",
            "-std=c++17",
            "-default-device",
        };
        if (LineInfo)
        {
            args.Add("-lineinfo");
        }

        if (PtxasVerbose && cubin)
        {
            args.Add("-Xptxas");
            args.Add("-v");
        }

        foreach (string define in Defines)
        {
            if (string.IsNullOrWhiteSpace(define) || define.Any(char.IsWhiteSpace))
            {
                throw new ArgumentException($"a define must be NAME or NAME=VALUE without spaces, got '{define}'",
                    nameof(Defines));
            }

            args.Add("-D" + define);
        }

        return args;
    }
}
