// The sanitizers of the emulated device: each is a flag that EmulatedDevice.Checks turns on per device (new devices
// take EmulatedDevice.DefaultChecks, which starts from the SLAK_EMU_CHECKS environment variable, so CI can turn them
// on for a whole test run). The scheduling and shared-memory bits are the emulator's launch flags
// (cuda/emu/slak_emu_fiber.h); BoundsCheck is the allocator's (guard pages, see HostAllocator).
namespace Slak.Cuda.Emulation;

/// <summary>Sanitizers of the emulated device (see <c>cuda/emu/README.md</c>).</summary>
[Flags]
internal enum EmulatorChecks
{
    /// <summary>No sanitizer: fibers run in thread order, device memory is placed page-aligned.</summary>
    None = 0,

    /// <summary>Run the fibers (CUDA threads) of each block in reverse order: a kernel whose result depends on the
    /// order of threads between barriers (a missing <c>__syncthreads</c>/<c>__syncwarp</c>) gives another result.
    /// </summary>
    ReverseSchedule = 1,

    /// <summary>Run the fibers of each block in a seeded random order, reshuffled at every pass of the scheduler
    /// (seed: <see cref="EmulatedDevice.ScheduleSeed"/>, printed in every error). Wins over
    /// <see cref="ReverseSchedule"/>.</summary>
    ShuffleSchedule = 2,

    /// <summary>Fill the static <c>__shared__</c> variables of the kernel's file with 0xFF bytes (NaN as float, -1
    /// as int) before every block, as dynamic shared memory always is.</summary>
    PoisonStaticShared = 4,

    /// <summary>Report two writes of the same shared-memory word by different threads between two barriers.</summary>
    SharedRaces = 8,

    /// <summary>Place each device allocation against an inaccessible guard page (16-byte aligned end), so that an
    /// access past its end (or before its start, into the guard page there) faults and comes back as an
    /// <see cref="EmulatorException"/> naming kernel, block, thread and address. Applies to allocations made while
    /// it is on.</summary>
    BoundsCheck = 16,

    /// <summary>After a launch made through <c>KernelArgs</c>, fail when an argument declared an output
    /// (<c>KernelArgs.AddOutput</c>) still holds the poison of fresh device memory (the word 0xFFFFFFFF): a part the
    /// kernel never wrote, or a value it computed from memory nobody wrote (NaN arithmetic keeps the poison's bits).
    /// Needs poisoned allocations (not <see cref="EmulatedDevice.LazyMemory"/>).</summary>
    UnwrittenOutputs = 32,

    /// <summary>What CI runs the emulated suite with: every sanitizer (at test shapes the emulated suite takes about
    /// a quarter longer than without, see cuda/emu/README.md).</summary>
    Ci = ShuffleSchedule | PoisonStaticShared | SharedRaces | BoundsCheck | UnwrittenOutputs,

    /// <summary>Every sanitizer.</summary>
    All = ShuffleSchedule | PoisonStaticShared | SharedRaces | BoundsCheck | UnwrittenOutputs,
}

/// <summary>Parses the <c>SLAK_EMU_CHECKS</c> / <c>SLAK_EMU_SEED</c> environment variables.</summary>
internal static class EmulatorCheckSettings
{
    /// <summary>Environment variable naming the default checks: a comma-separated list of <c>reverse</c>,
    /// <c>shuffle</c>, <c>static-shared</c>, <c>races</c>, <c>bounds</c>, <c>outputs</c>, <c>ci</c>, <c>all</c>,
    /// <c>none</c>.</summary>
    public const string ChecksVariable = "SLAK_EMU_CHECKS";

    /// <summary>Environment variable with the default seed of the shuffled schedule (an unsigned integer).</summary>
    public const string SeedVariable = "SLAK_EMU_SEED";

    /// <summary>Parses a checks list (see <see cref="ChecksVariable"/>); throws naming an unknown word.</summary>
    public static EmulatorChecks Parse(string? text)
    {
        var checks = EmulatorChecks.None;
        if (string.IsNullOrWhiteSpace(text)) return checks;
        foreach (var raw in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            checks |= raw.ToLowerInvariant() switch
            {
                "none" or "0" => EmulatorChecks.None,
                "reverse" => EmulatorChecks.ReverseSchedule,
                "shuffle" => EmulatorChecks.ShuffleSchedule,
                "static-shared" => EmulatorChecks.PoisonStaticShared,
                "races" => EmulatorChecks.SharedRaces,
                "bounds" => EmulatorChecks.BoundsCheck,
                "outputs" => EmulatorChecks.UnwrittenOutputs,
                "ci" => EmulatorChecks.Ci,
                "all" => EmulatorChecks.All,
                _ => throw new ArgumentException(
                    $"{ChecksVariable}: unknown check '{raw}' in '{text}' (known: reverse, shuffle, static-shared, " +
                    "races, bounds, outputs, ci, all, none)", nameof(text)),
            };
        }
        return checks;
    }

    /// <summary>The checks named by <see cref="ChecksVariable"/> (none when unset).</summary>
    public static EmulatorChecks FromEnvironment() => Parse(Environment.GetEnvironmentVariable(ChecksVariable));

    /// <summary>The seed named by <see cref="SeedVariable"/>, or 1 when unset.</summary>
    public static ulong SeedFromEnvironment()
    {
        var text = Environment.GetEnvironmentVariable(SeedVariable);
        if (string.IsNullOrWhiteSpace(text)) return 1;
        return ulong.TryParse(text.Trim(), out var seed)
            ? seed
            : throw new ArgumentException($"{SeedVariable}='{text}' is not an unsigned integer");
    }
}
