// Where a block MLP call spends its time (bench mlp-phases' per-product breakdown): when the bench sets a clock, each
// task of CpuMlp.Forward / Backward adds the time of each of its steps (every product, every pass that is not a
// product) to its own row; otherwise every probe is one null check. Timestamps cost ~20 ns each, two to ten per block
// of 100+ microseconds.
using System.Diagnostics;

namespace Slak.Backends.Cpu;

/// <summary>The steps of a block MLP call, timed per task (see the file comment).</summary>
internal enum MlpPhase
{
    /// <summary>The weights packed once per call (before the tasks).</summary>
    Pack,
    /// <summary>pre = x w1^T + b1 and act = GELU(pre) (the forward's first product; the backward's recompute).</summary>
    Fc1,
    /// <summary>y = act w2^T + b2.</summary>
    Fc2,
    /// <summary>act = GELU(pre) from the kept pre-activation (the backward).</summary>
    GeluRecompute,
    /// <summary>dact = dy w2.</summary>
    Dact,
    /// <summary>dpre = dact GELU'(pre), a pass over the block.</summary>
    GeluGrad,
    /// <summary>Column sums of dpre and dy (the bias gradients), added to the task's double sums.</summary>
    ColumnSums,
    /// <summary>dw2^T += act^T dy.</summary>
    Dw2,
    /// <summary>dw1 += dpre^T x.</summary>
    Dw1,
    /// <summary>dx = dpre w1.</summary>
    Dx,
    /// <summary>The per-task weight and bias gradients added in task order (after the tasks).</summary>
    Reduce,
}

/// <summary>Per-task step times of CpuMlp calls while <see cref="Ticks"/> is set.</summary>
internal static class MlpPhaseClock
{
    internal const int Count = (int)MlpPhase.Reduce + 1;

    /// <summary>Stopwatch ticks per [task * Count + phase], summed over calls; null: not timed. Tasks beyond the
    /// array's rows are not timed.</summary>
    internal static long[]? Ticks { get; set; }

    /// <summary>A timestamp when timing, else 0.</summary>
    internal static long Start() => Ticks == null ? 0 : Stopwatch.GetTimestamp();

    /// <summary>Adds the time since <paramref name="t"/> to the task's phase and moves t to now.</summary>
    internal static void Lap(int task, MlpPhase phase, ref long t)
    {
        var ticks = Ticks;
        if (ticks == null) return;
        long now = Stopwatch.GetTimestamp();
        int at = task * Count + (int)phase;
        if (at < ticks.Length) ticks[at] += now - t;
        t = now;
    }
}
