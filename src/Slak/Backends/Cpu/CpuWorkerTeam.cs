// A persistent team of worker threads for CpuParallel.For: the fork/join of the CPU training step.
//
// Why not Parallel.For: the step forks ~100-120 times (every norm, depthwise, MLP and convolution call), and each
// Parallel.For costs ~18 us and 1.6 KB on an idle 2-core machine (bench/results/step-fixed-costs.md). Worse, its
// pool worker is parked between calls; waking it is an OS wake-up (and, on a virtual machine whose other vCPU
// halted, a hypervisor one), so the second half of the work often starts late, and under load only after the
// calling thread has done it all (bench/results/mlp-in-step.md: "late start"). OpenMP runtimes solve this the way
// done here: workers that stay awake for a short while after each job, spinning on a job counter, so the next fork
// is one store and the join one counter.
//
// Protocol. The caller that wins the team (one at a time; any other caller, and any nested call, falls back to
// Parallel.For) publishes a fresh Job, then bumps the generation. A worker that sees a new generation reads the
// current job, takes a helper ticket (at most threads - 1 helpers join, so CpuParallel.Threads stays a budget) and
// claims indices from the job's counter, as the caller does; the caller then waits until every index has finished.
// Each index is claimed once and run once, on whichever thread claims it, so results depend only on what a body
// does per index, exactly as with Parallel.For. A worker spins for SpinMicroseconds after its last job, then parks
// on its monitor; the dispatcher wakes parked workers only (an Interlocked flag per worker, so a wake-up cannot be
// lost: the worker re-reads the generation after raising its flag and before it waits).
using System.Diagnostics;

namespace Slak.Backends.Cpu;

/// <summary>Persistent spinning worker threads behind <see cref="CpuParallel.For(int, int, Action{int}, string,
/// string)"/> (SLAK_CPU_TEAM, SLAK_CPU_SPIN_US).</summary>
internal static class CpuWorkerTeam
{
    /// <summary>Whether CpuParallel.For runs on the team (default) rather than on Parallel.For
    /// (SLAK_CPU_TEAM=0).</summary>
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("SLAK_CPU_TEAM") != "0";

    /// <summary>How long an idle worker spins for the next job before it parks (SLAK_CPU_SPIN_US, default 500):
    /// longer than the serial gaps between the training step's parallel calls, short enough that an idle
    /// process stops burning cores within a millisecond.</summary>
    public static int SpinMicroseconds { get; set; } = ReadSpin();

    private sealed class Job
    {
        public required Action<int> Body;
        public required int To;
        public required int MaxHelpers;
        public int Next;        // the next index to claim (starts at from)
        public int Finished;    // indices run (or skipped after a failure)
        public int Helpers;     // helper tickets taken
        public int Count;       // to - from
        public volatile bool Failed;
        public List<Exception>? Errors;
    }

    private sealed class Worker
    {
        public int Parked;      // 1 while the worker waits (or is about to) for a wake-up
        private bool _woken;

        /// <summary>Blocks until <see cref="WakeUp"/> has been called since the last return.</summary>
        public void Sleep()
        {
            lock (this)
            {
                while (!_woken) Monitor.Wait(this);
                _woken = false;
            }
        }

        public void WakeUp()
        {
            lock (this)
            {
                _woken = true;
                Monitor.Pulse(this);
            }
        }
    }

    private static readonly object _growLock = new();
    private static Worker[] _workers = [];
    private static Job? _job;
    private static long _generation;
    private static int _busy;                  // 1 while a caller owns the team
    [ThreadStatic] private static bool _isWorker;

    /// <summary>Runs <paramref name="body"/> for every i in [from, to) on the calling thread and up to
    /// threads - 1 team workers. Returns false, having run nothing, when the team is in use (another thread's
    /// call, or a call nested in a body): the caller then takes another route.</summary>
    public static bool TryFor(int from, int to, int threads, Action<int> body)
    {
        if (_isWorker || Interlocked.CompareExchange(ref _busy, 1, 0) != 0) return false;
        try
        {
            int count = to - from;
            int helpers = Math.Min(threads, count) - 1;
            EnsureWorkers(helpers);
            var job = new Job { Body = body, To = to, MaxHelpers = helpers, Next = from, Count = count };
            Volatile.Write(ref _job, job);
            Interlocked.Increment(ref _generation);
            var workers = _workers;
            for (int w = 0; w < helpers && w < workers.Length; w++)
                if (Interlocked.Exchange(ref workers[w].Parked, 0) == 1) workers[w].WakeUp();

            Work(job);
            var spin = new SpinWait();
            while (Volatile.Read(ref job.Finished) < count) spin.SpinOnce(sleep1Threshold: -1);
            if (job.Errors is { } errors) throw new AggregateException(errors);
            return true;
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    /// <summary>Claims and runs the job's indices until none is left.</summary>
    private static void Work(Job job)
    {
        while (true)
        {
            int i = Interlocked.Increment(ref job.Next) - 1;
            if (i >= job.To) return;
            if (!job.Failed)
            {
                try
                {
                    job.Body(i);
                }
                catch (Exception e)
                {
                    lock (job) (job.Errors ??= []).Add(e);
                    job.Failed = true;
                }
            }
            Interlocked.Increment(ref job.Finished);
        }
    }

    private static void EnsureWorkers(int helpers)
    {
        if (_workers.Length >= helpers) return;
        lock (_growLock)
        {
            var workers = _workers;
            if (workers.Length >= helpers) return;
            var grown = new Worker[helpers];
            Array.Copy(workers, grown, workers.Length);
            for (int w = workers.Length; w < helpers; w++)
            {
                var worker = grown[w] = new Worker();
                var thread = new Thread(() => Loop(worker))
                {
                    IsBackground = true,
                    Name = $"slak-cpu-worker-{w + 1}",
                };
                thread.Start();
            }
            Volatile.Write(ref _workers, grown);
        }
    }

    private static void Loop(Worker worker)
    {
        _isWorker = true;
        long seen = Volatile.Read(ref _generation);
        while (true)
        {
            long generation = WaitForGeneration(worker, seen);
            seen = generation;
            var job = Volatile.Read(ref _job)!;
            if (Interlocked.Increment(ref job.Helpers) <= job.MaxHelpers) Work(job);
        }
    }

    /// <summary>Spins until the generation moves past <paramref name="seen"/>, then parks until woken.</summary>
    private static long WaitForGeneration(Worker worker, long seen)
    {
        long spinUntil = Stopwatch.GetTimestamp() + SpinMicroseconds * Stopwatch.Frequency / 1_000_000;
        while (true)
        {
            for (int k = 0; k < 64; k++)
            {
                long generation = Volatile.Read(ref _generation);
                if (generation != seen) return generation;
                Thread.SpinWait(8);
            }
            if (Stopwatch.GetTimestamp() < spinUntil) continue;

            Interlocked.Exchange(ref worker.Parked, 1);
            long now = Interlocked.Read(ref _generation);
            if (now != seen)
            {
                Interlocked.Exchange(ref worker.Parked, 0);
                return now;
            }
            worker.Sleep();
            spinUntil = Stopwatch.GetTimestamp() + SpinMicroseconds * Stopwatch.Frequency / 1_000_000;
        }
    }

    private static int ReadSpin()
    {
        var env = Environment.GetEnvironmentVariable("SLAK_CPU_SPIN_US");
        return int.TryParse(env, out int us) && us >= 0 ? us : 500;
    }
}
