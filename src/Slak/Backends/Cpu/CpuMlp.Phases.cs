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
    /// <summary>dpre = dact GELU'(pre), a pass over the block (with CpuMlp.GeluJoint, the default where pre is kept,
    /// the same pass also makes act = GELU(pre), and GeluRecompute is 0).</summary>
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
    /// <summary>From the fork (the call's CpuParallel.For) to the task's first step: the time a worker takes to
    /// wake up and pick the task up.</summary>
    Start,
    /// <summary>From the task's last step to the join's return: the time the task's thread waits on the other
    /// tasks (an unequal split, a slower or descheduled thread) and on the join itself.</summary>
    Wait,
}

/// <summary>Per-task step times of CpuMlp calls while <see cref="Ticks"/> is set.</summary>
internal static class MlpPhaseClock
{
    internal const int Count = (int)MlpPhase.Wait + 1;

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
        // Whole rows of tasks only: a per-call entry's extra last slot (ByShape) is its wall, not a task's step.
        if (at < ticks.Length - ticks.Length % Count) ticks[at] += now - t;
        t = now;
    }

    /// <summary>Per call shape (backward or not, rows, in features), one entry per call: its tasks' step times (tasks
    /// x <see cref="Count"/>), then its wall time; null: not timed per call. While set, each call points
    /// <see cref="Ticks"/> at a new entry (bench mlp-in-step: the MLP calls of a training step, one at a
    /// time).</summary>
    internal static Dictionary<(bool Backward, int Rows, int In), List<long[]>>? ByShape { get; set; }

    /// <summary>Tasks timed per call in <see cref="ByShape"/>.</summary>
    internal const int ShapeTasks = 2;

    /// <summary>The start of a call: points <see cref="Ticks"/> at a new entry of its shape when timing per call; a
    /// timestamp when timing, else 0.</summary>
    internal static long BeginCall(bool backward, int rows, int inFeatures)
    {
        var byShape = ByShape;
        if (byShape != null)
        {
            var key = (backward, rows, inFeatures);
            if (!byShape.TryGetValue(key, out var calls)) byShape[key] = calls = [];
            calls.Add(Ticks = new long[ShapeTasks * Count + 1]);
        }
        return Start();
    }

    /// <summary>The end of a call begun at <paramref name="t0"/>: its wall time kept in its entry when timing per
    /// call.</summary>
    internal static void EndCall(long t0)
    {
        var ticks = Ticks;
        if (ByShape == null || ticks == null) return;
        ticks[^1] = Stopwatch.GetTimestamp() - t0;
    }

    /// <summary>Per task, the timestamp of its last step, when timing; else null.</summary>
    internal static long[]? TaskEnds(int tasks) => Ticks == null ? null : new long[tasks];

    /// <summary>A task's first step: adds the time since the fork to its <see cref="MlpPhase.Start"/>; returns the
    /// timestamp for its first lap.</summary>
    internal static long TaskStart(int task, long fork)
    {
        long t = fork;
        Lap(task, MlpPhase.Start, ref t);
        return t;
    }

    /// <summary>A task's last step: its timestamp kept for <see cref="Joined"/>.</summary>
    internal static void TaskEnd(long[]? ends, int task)
    {
        if (ends != null) ends[task] = Stopwatch.GetTimestamp();
    }

    /// <summary>After the join: each task's time from its last step to now added to its
    /// <see cref="MlpPhase.Wait"/>.</summary>
    internal static void Joined(long[]? ends)
    {
        if (ends == null) return;
        for (int task = 0; task < ends.Length; task++)
        {
            long t = ends[task];
            Lap(task, MlpPhase.Wait, ref t);
        }
    }
}
