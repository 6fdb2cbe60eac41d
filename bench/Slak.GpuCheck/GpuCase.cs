// One case of the GPU check = one row of its table. A kernel row is named by the `extern "C" __global__` kernel it
// exists for (GpuCheckCoverageTests requires one for every kernel of cuda/kernels); the case calls the backend
// operation that launches that kernel at a SLaK-T shape and compares every output with the CPU backend. An
// end-to-end row (training steps, inference) is named "e2e ...". Cases are descriptors: nothing is allocated
// until Run, so --list and the process driver are cheap.
using Slak.Cuda.Runtime;

namespace Slak.GpuCheck;

/// <summary>How a case runs under <c>--blocks sample</c> (sampled execution on the emulator at full scale).</summary>
internal enum SampleHandling
{
    /// <summary>Launches of <see cref="GpuCase.SampledKernels"/> execute only the standard block sample; every
    /// other launch of the operation runs whole. Outputs are poisoned; every element that is no longer poison is
    /// compared with the CPU, and at least one element of every output must have been written.</summary>
    Blocks,

    /// <summary>As <see cref="Blocks"/>, for operations that update their output in place (no poison possible):
    /// the compared elements are those that differ (bitwise) from the value they had before the run.</summary>
    InPlace,

    /// <summary>As <see cref="Blocks"/>, but the sampled kernel accumulates across grid.y (per-chunk partials
    /// summed by a second kernel): grid.x is sampled, every grid.y of a sampled x runs, the reduction runs
    /// whole, and only the output elements that the sampled x own (<see cref="GpuCase.Owner"/>) are compared.</summary>
    Columns,

    /// <summary>The whole operation runs unsampled (kernels that accumulate across every block of the grid, with
    /// a grid small enough to emulate whole at SLaK-T size: fixed-size grid-stride grids, one block per
    /// channel).</summary>
    Whole,

    /// <summary>Not run under sampling (<see cref="GpuCase.SampleNote"/> says why).</summary>
    Skip,
}

/// <summary>A row of the check.</summary>
/// <param name="Name">The row name: the kernel's own name, or "e2e ..." for end-to-end rows.</param>
/// <param name="Group">Case group (one child process per group under <see cref="Isolation.Process"/>).</param>
/// <param name="Op">The backend operation the case calls (shown in the table).</param>
/// <param name="Run">Runs the case: creates its inputs and calls <see cref="CheckContext.Check"/> once.</param>
internal sealed record GpuCase(string Name, string Group, string Op, Action<CheckContext> Run)
{
    /// <summary>Sampling under <c>--blocks sample</c>.</summary>
    public SampleHandling Sampling { get; init; } = SampleHandling.Blocks;

    /// <summary>Why the case is handled as it is under sampling (shown in the row's note).</summary>
    public string SampleNote { get; init; } = "";

    /// <summary>The kernel the launcher runs instead of the row's kernel where the shape is below the row kernel's
    /// predicate (reduced scales) or, on the emulator, where the library holds no instance of its specialisation; the
    /// row then accepts that launch (null: the row's kernel must launch).</summary>
    public string? FallbackKernel { get; init; }

    /// <summary>Kernels whose launches are sampled (default: the row's kernel). Other launches run whole.</summary>
    public IReadOnlyList<string>? SampledKernels { get; init; }

    /// <summary>For <see cref="SampleHandling.Columns"/>: the grid.x block that owns element i of output k, given
    /// the sampled kernel's grid and the output's length (only elements whose owner ran are compared).</summary>
    public Func<int, long, Dim3, long, long>? Owner { get; init; }

    /// <summary>True for an end-to-end row (its row reports img/s and peak memory).</summary>
    public bool EndToEnd => Name.StartsWith("e2e ", StringComparison.Ordinal);

    /// <summary>The kernels sampled under <c>--blocks sample</c>: <see cref="SampledKernels"/>, else the row's kernel
    /// and its <see cref="FallbackKernel"/> (where the launcher runs the fallback, the fallback's launch is the one
    /// to sample).</summary>
    public IReadOnlyList<string> Sampled => SampledKernels ?? (FallbackKernel is { } f ? [Name, f] : [Name]);
}
