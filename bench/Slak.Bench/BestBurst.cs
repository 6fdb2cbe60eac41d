// The timing harness of the machine-limit measurements (fma-peak, train-vs-torch's bandwidths): short bursts repeated
// on persistent threads, the best burst kept. On a shared machine a burst that ran undisturbed on every core is what
// measures the hardware limit. Each worker stamps its own burst, and a burst lasts from the first start to the last
// end, so a late or preempted worker can only lengthen it.
using System.Diagnostics;

namespace Slak.Bench;

internal static class BestBurst
{
    /// <summary>Runs <paramref name="warmup"/> + <paramref name="reps"/> bursts of <paramref name="burst"/>(thread id)
    /// on <paramref name="threads"/> threads at once and returns the shortest of the last <paramref name="reps"/> in
    /// seconds. The floats the bursts return are summed so that the work cannot be optimised away.</summary>
    public static double Seconds(int threads, int reps, int warmup, Func<int, float> burst)
    {
        var starts = new long[threads];
        var ends = new long[threads];
        double best = double.MaxValue;
        float sink = 0;
        using var start = new Barrier(threads + 1);
        using var done = new Barrier(threads + 1);
        var workers = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            int id = t;
            workers[t] = new Thread(() =>
            {
                float local = 0;
                for (int r = 0; r < warmup + reps; r++)
                {
                    start.SignalAndWait();
                    starts[id] = Stopwatch.GetTimestamp();
                    local += burst(id);
                    ends[id] = Stopwatch.GetTimestamp();
                    done.SignalAndWait();
                }
                lock (workers) sink += local;
            }) { IsBackground = true };
            workers[t].Start();
        }
        for (int r = 0; r < warmup + reps; r++)
        {
            start.SignalAndWait();
            done.SignalAndWait();
            if (r >= warmup) best = Math.Min(best, (double)(ends.Max() - starts.Min()) / Stopwatch.Frequency);
        }
        foreach (var w in workers) w.Join();
        if (float.IsNaN(sink)) Console.WriteLine("(nan)");
        return best;
    }
}
