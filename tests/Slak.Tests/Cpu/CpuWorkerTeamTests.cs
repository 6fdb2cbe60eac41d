// The persistent worker team behind CpuParallel.For (CpuWorkerTeam.cs): every index runs exactly once, never on more
// threads than CpuParallel.Threads allows, exceptions come back as from Parallel.For and leave the team usable,
// nested calls and calls from several threads at once (which fall back to Parallel.For) still run every index,
// parked workers (no spinning) are woken for every call, and a kernel gives the same bits on the team as on
// Parallel.For.
using System.Collections.Concurrent;
using NUnit.Framework;
using Slak.Backends;
using Slak.Backends.Cpu;
using Slak.Tests.Support;
using static Slak.Tests.Support.CpuTensors;

namespace Slak.Tests.Cpu;

[TestFixture]
[NonParallelizable] // changes CpuParallel.Threads, CpuWorkerTeam.Enabled and CpuWorkerTeam.SpinMicroseconds
public class CpuWorkerTeamTests
{
    private int _keepThreads, _keepSpin;
    private bool _keepEnabled;

    [SetUp]
    public void Keep()
    {
        _keepThreads = CpuParallel.Threads;
        _keepEnabled = CpuWorkerTeam.Enabled;
        _keepSpin = CpuWorkerTeam.SpinMicroseconds;
        CpuWorkerTeam.Enabled = true;
    }

    [TearDown]
    public void Restore()
    {
        CpuParallel.Threads = _keepThreads;
        CpuWorkerTeam.Enabled = _keepEnabled;
        CpuWorkerTeam.SpinMicroseconds = _keepSpin;
    }

    /// <summary>Runs CpuParallel.For over [from, to) and returns how often each index ran and the largest number of
    /// bodies that ran at once.</summary>
    private static (int[] Runs, int MaxConcurrent, int Threads) Count(int from, int to, int workMicroseconds = 0)
    {
        var runs = new int[to - from];
        int running = 0, maxConcurrent = 0;
        var threadIds = new ConcurrentDictionary<int, bool>();
        CpuParallel.For(from, to, i =>
        {
            int now = Interlocked.Increment(ref running);
            int seen;
            while (now > (seen = Volatile.Read(ref maxConcurrent))
                   && Interlocked.CompareExchange(ref maxConcurrent, now, seen) != seen) { }
            threadIds[Environment.CurrentManagedThreadId] = true;
            Interlocked.Increment(ref runs[i - from]);
            if (workMicroseconds > 0)
            {
                long until = System.Diagnostics.Stopwatch.GetTimestamp()
                             + workMicroseconds * System.Diagnostics.Stopwatch.Frequency / 1_000_000;
                while (System.Diagnostics.Stopwatch.GetTimestamp() < until) Thread.SpinWait(10);
            }
            Interlocked.Decrement(ref running);
        });
        return (runs, maxConcurrent, threadIds.Count);
    }

    [TestCase(1, 0, 2)]
    [TestCase(2, 0, 2)]
    [TestCase(2, 5, 1000)]
    [TestCase(3, -7, 8)]
    [TestCase(4, 0, 3)]
    [TestCase(4, 0, 257)]
    public void EveryIndexRunsOnceWithinTheThreadBudget(int threads, int from, int to)
    {
        CpuParallel.Threads = threads;
        for (int call = 0; call < 50; call++)
        {
            var (runs, maxConcurrent, _) = Count(from, to, workMicroseconds: call % 5 == 0 ? 20 : 0);
            Assert.That(runs, Is.All.EqualTo(1), $"call {call}, {threads} threads, [{from}, {to}): an index ran twice or never");
            Assert.That(maxConcurrent, Is.LessThanOrEqualTo(threads), $"call {call}: more bodies at once than the budget");
        }
    }

    [Test]
    public void UsesMoreThanOneThreadWhenAllowed()
    {
        CpuParallel.Threads = 2;
        // Each index works 200 us: with a helper awake, the two indices of some call run on two threads.
        bool twoThreads = false;
        for (int call = 0; call < 200 && !twoThreads; call++) twoThreads = Count(0, 2, workMicroseconds: 200).Threads == 2;
        Assert.That(twoThreads, Is.True, "200 calls of two 200 us indices never ran on two threads: the team never helped");
    }

    [Test]
    public void ParkedWorkersAreWokenForEveryCall()
    {
        CpuParallel.Threads = 2;
        CpuWorkerTeam.SpinMicroseconds = 0;    // park right after every job
        for (int call = 0; call < 100; call++)
        {
            if (call % 10 == 0) Thread.Sleep(2);    // let the worker park
            var (runs, _, _) = Count(0, 64, workMicroseconds: call % 3 == 0 ? 10 : 0);
            Assert.That(runs, Is.All.EqualTo(1), $"call {call} with parked workers");
        }
    }

    [Test]
    public void ExceptionsComeBackAggregatedAndTheTeamStaysUsable()
    {
        CpuParallel.Threads = 2;
        var ex = Assert.Throws<AggregateException>(() => CpuParallel.For(0, 100, i =>
        {
            if (i == 37) throw new InvalidOperationException("index 37 fails");
        }));
        Assert.That(ex!.InnerExceptions.Select(e => e.Message), Has.Member("index 37 fails"));
        var (runs, _, _) = Count(0, 100);
        Assert.That(runs, Is.All.EqualTo(1), "the call after a failed one");
    }

    [Test]
    public void NestedCallsRunEveryIndex()
    {
        CpuParallel.Threads = 2;
        var runs = new int[12 * 9];
        CpuParallel.For(0, 12, i => CpuParallel.For(0, 9, j => Interlocked.Increment(ref runs[i * 9 + j])));
        Assert.That(runs, Is.All.EqualTo(1));
    }

    [Test]
    public void CallsFromSeveralThreadsAtOnceRunEveryIndex()
    {
        CpuParallel.Threads = 2;
        var failures = new ConcurrentQueue<string>();
        var callers = Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            for (int call = 0; call < 100; call++)
            {
                var (runs, _, _) = Count(0, 33 + t);
                if (runs.Any(r => r != 1)) failures.Enqueue($"caller {t}, call {call}");
            }
        })).ToList();
        callers.ForEach(c => c.Start());
        callers.ForEach(c => c.Join());
        Assert.That(failures, Is.Empty);
    }

    [Test]
    public void TheMlpGivesTheSameBitsOnTheTeamAsOnParallelFor()
    {
        // The block MLP splits its rows (or hidden units) into tasks and sums their weight gradients in task order:
        // which thread runs a task must not change a bit.
        var rng = TestRandom.ForCurrentTest();
        const int rows = 2048, c = 62, hidden = 4 * c;
        var x = rng.NormalArray((long)rows * c);
        var w1 = rng.NormalArray((long)hidden * c, 1 / Math.Sqrt(c));
        var b1 = rng.NormalArray(hidden, 0.5);
        var w2 = rng.NormalArray((long)c * hidden, 1 / Math.Sqrt(hidden));
        var b2 = rng.NormalArray(c, 0.5);
        var dy = rng.NormalArray((long)rows * c);
        float[][] Run(bool team)
        {
            CpuWorkerTeam.Enabled = team;
            CpuParallel.Threads = 2;
            IBackend be = CpuBackend.Instance;
            var y = Nan(rows, c);
            var pre = Nan(rows, hidden);
            var dx = Nan(rows, c);
            var dw1 = Nan(hidden, c);
            var db1 = Nan(hidden);
            var dw2 = Nan(c, hidden);
            var db2 = Nan(c);
            var xt = CpuCopy(x, rows, c);
            var w1t = CpuCopy(w1, hidden, c);
            var b1t = CpuCopy(b1, hidden);
            var w2t = CpuCopy(w2, c, hidden);
            be.MlpForward(xt, w1t, b1t, w2t, CpuCopy(b2, c), pre, y);
            be.MlpBackward(CpuCopy(dy, rows, c), xt, w1t, b1t, w2t, pre, dx, dw1, db1, dw2, db2);
            return [y.ToArray(), dx.ToArray(), dw1.ToArray(), db1.ToArray(), dw2.ToArray(), db2.ToArray()];
        }
        var onTeam = Run(team: true);
        var onPool = Run(team: false);
        string[] names = ["y", "dx", "dw1", "db1", "dw2", "db2"];
        for (int k = 0; k < names.Length; k++)
        {
            Assert.That(onTeam[k], Has.None.NaN, rng.Ctx($"{names[k]}: an output the team left unwritten"));
            Assert.That(onTeam[k], Is.EqualTo(onPool[k]), rng.Ctx($"{names[k]} on the team vs Parallel.For"));
        }
    }
}
