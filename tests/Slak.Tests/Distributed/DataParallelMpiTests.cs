// Data-parallel training through the real `slak` command under Open MPI's mpirun (issue 22): 2 ranks against one
// process at the same global batch and seed (on cpu with the exchange overlapping backward, and the same bits with the
// overlap off; on cuda-emu through the device collective with the NCCL stand-in), resume of a 2-rank run on 1 and on 2
// ranks, a rank killed or hung mid-epoch, and ranks started with different options. Tiny on purpose: the trajectory
// fixture's model (dims 8..24, every branch with BatchNorm, so SyncBatchNorm is exercised) on its 160-image .npz, drop
// path on (keyed draws), sparse with a prune/regrow round every 2 steps. Skipped, saying why, when mpirun is
// not installed.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using NUnit.Framework;
using Slak.IO;

namespace Slak.Tests.Distributed;

[NonParallelizable]
public class DataParallelMpiTests
{
    // Stated tolerances: the 2-rank step adds the ranks' gradients in another order than the single process's batch
    // reduction (and SyncBatchNorm sums in float64), so the runs agree to rounding, not bit for bit. Observed: per-step
    // loss within ~2e-7 relative, final tensors ~1e-6 relative L2.
    private const double LossTolerance = 1e-5;
    private const double WeightTolerance = 1e-4;

    private string _folder = "";

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "TestData", "trajectory", name);

    private static string[] Common(string folder, int batch, int epochs) =>
    [
        "train", "--model-config", Fixture("config.json"), "--data", Fixture("data.npz"), "--epochs", epochs.ToString(CultureInfo.InvariantCulture),
        "--batch-size", batch.ToString(CultureInfo.InvariantCulture), "--sparse", "--density", "0.6", "--update-frequency", "2",
        "--drop-path", "0.2", "--device", "cpu", "--log-every", "1", "--threads", "1", "--seed", "5", "--out", folder,
    ];

    [SetUp]
    public void SetUp()
    {
        if (FindOnPath("mpirun") is null) Assert.Ignore("mpirun is not installed (apt: openmpi-bin libopenmpi-dev; .ci/setup installs them)");
        _folder = Path.Combine(Path.GetTempPath(), "slak-dp-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_folder);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public void TwoRanksMatchOneProcess_AndA2RankRunResumesOnOneAndOnTwoRanks()
    {
        string two = Path.Combine(_folder, "two"), one = Path.Combine(_folder, "one");
        // Small buckets (262 values: dozens per step) so that the exchange really overlaps backward.
        var r2 = Mpi(2, Common(two, 8, 1), env: new() { ["SLAK_DP_BUCKET_MB"] = "0.001" });
        Assert.That(r2.Exit, Is.EqualTo(0), r2.Out + r2.Err);
        Assert.That(r2.Out, Does.Contain("data parallel: 2 ranks").And.Contain("effective batch 16"));
        Assert.That(r2.Out, Does.Contain("data parallel: gradients and SyncBatchNorm statistics reduced with MPI on host buffers (Open MPI"));
        Assert.That(r2.Out, Does.Match(@"gradient exchange: \d\d+ buckets per step; 100% started during backward"), "every bucket started during backward");
        Assert.That(r2.Out.Split('\n').Count(l => l.StartsWith("step 10/10", StringComparison.Ordinal)), Is.EqualTo(1), "one progress display (rank 0)");
        var r1 = Cli(Common(one, 16, 1));
        Assert.That(r1.Exit, Is.EqualTo(0), r1.Out + r1.Err);
        Assert.That(r1.Out, Does.Contain("step 10: prune/regrow"), "five prune/regrow rounds happened");
        AssertSameRun(one, two, 10);

        // The overlap changes when buckets start, not what they hold: the same run with it off is the same bits.
        string later = Path.Combine(_folder, "two-no-overlap");
        var r3 = Mpi(2, Common(later, 8, 1), env: new() { ["SLAK_DP_BUCKET_MB"] = "0.001", ["SLAK_DP_OVERLAP"] = "0" });
        Assert.That(r3.Exit, Is.EqualTo(0), r3.Out + r3.Err);
        Assert.That(r3.Out, Does.Contain("0% started during backward"));
        AssertBitIdentical(two, later);

        // Resume the 2-rank run (epoch 1 of a run extended to 2) on 1 rank and on 2: both continue the same way.
        string onOne = Path.Combine(_folder, "resumed-1"), onTwo = Path.Combine(_folder, "resumed-2");
        CopyFolder(two, onOne);
        CopyFolder(two, onTwo);
        var a = Mpi(1, ["train", "--resume", "--out", onOne, "--data", Fixture("data.npz"), "--epochs", "2", "--threads", "1"]);
        Assert.That(a.Exit, Is.EqualTo(0), a.Out + a.Err);
        Assert.That(a.Out, Does.Contain("resuming a 2-rank run on 1 ranks: batch 16 per rank keeps the global batch 16"));
        var b = Mpi(2, ["train", "--resume", "--out", onTwo, "--data", Fixture("data.npz"), "--epochs", "2", "--threads", "1"]);
        Assert.That(b.Exit, Is.EqualTo(0), b.Out + b.Err);
        AssertSameRun(onOne, onTwo, 20);
    }

    [Test]
    public void TwoCudaEmuRanksOnDeviceBuffers_MatchOneProcess()
    {
        // cuda-emu ranks with the NCCL stand-in: gradient buckets and SyncBatchNorm statistics go through the device
        // collective (device buffers, the scaling on the device, SyncBatchNorm's device statistics), as on GPUs
        // with NCCL.
        string two = Path.Combine(_folder, "emu-two"), one = Path.Combine(_folder, "emu-one");
        string[] Emu(string folder, int batch)
        {
            var args = Common(folder, batch, 1);
            args[Array.IndexOf(args, "--device") + 1] = "cuda-emu";
            args[Array.IndexOf(args, "--update-frequency") + 1] = "1"; // a prune/regrow round after each of the 2 steps
            return [.. args, "--limit", "32"];
        }
        var r2 = Mpi(2, Emu(two, 8), env: new() { ["SLAK_DP_FAKE_NCCL"] = "1", ["SLAK_DP_BUCKET_MB"] = "0.001" });
        if (r2.Err.Contains("device cuda-emu is unavailable", StringComparison.Ordinal)) Assert.Ignore("the emulator is not available here");
        Assert.That(r2.Exit, Is.EqualTo(0), r2.Out + r2.Err);
        Assert.That(r2.Out, Does.Contain("reduced with an NCCL stand-in (host-staged MPI sums, SLAK_DP_FAKE_NCCL) on device buffers (compute stream)"));
        Assert.That(r2.Out, Does.Contain("BatchNorm statistics synchronised over the ranks"));
        var r1 = Cli(Emu(one, 16));
        Assert.That(r1.Exit, Is.EqualTo(0), r1.Out + r1.Err);
        AssertSameRun(one, two, 2);
    }

    [Test]
    public void ARankKilledMidEpoch_EndsTheJob_AndTheLastCheckpointIsReadable()
    {
        string run = Path.Combine(_folder, "killed");
        var r = Mpi(2, Common(run, 8, 6), onLine: (line, marker) =>
        {
            if (!line.StartsWith("step 12/", StringComparison.Ordinal)) return false; // in epoch 2, after epoch 1's checkpoint
            Process.GetProcessById(RankPid(marker, 1)).Kill();
            return true;
        });
        Assert.That(r.Exit, Is.Not.EqualTo(0), r.Out + r.Err);
        Assert.That(r.Err, Does.Contain("exited on signal 9").Or.Contain("killed").IgnoreCase, r.Err);
        Assert.That(r.Out, Does.Not.Contain("step 60/60"));
        AssertCheckpointReadable(run);
    }

    [Test]
    public void AHungRank_StopsEveryRankWithinTheTimeout_WithTheWatchdogsError()
    {
        string run = Path.Combine(_folder, "hung");
        var clock = new Stopwatch();
        var r = Mpi(2, Common(run, 8, 6), env: new() { ["SLAK_DP_TIMEOUT"] = "8" }, onLine: (line, marker) =>
        {
            if (!line.StartsWith("step 12/", StringComparison.Ordinal)) return false;
            using var stop = Process.Start("kill", ["-STOP", RankPid(marker, 1).ToString(CultureInfo.InvariantCulture)]);
            stop.WaitForExit();
            clock.Start();
            return true;
        });
        Assert.That(r.Exit, Is.Not.EqualTo(0), r.Out + r.Err);
        Assert.That(r.Err, Does.Contain("rank 0 of 2: no answer from the other ranks for 8 s in the "), r.Err);
        Assert.That(clock.Elapsed.TotalSeconds, Is.LessThan(60), "the job ended soon after the timeout");
        AssertCheckpointReadable(run);
    }

    [Test]
    public void RanksStartedWithDifferentOptions_AreRefusedNamingTheOption()
    {
        string run = Path.Combine(_folder, "differ");
        var args0 = Common(run, 8, 1).Concat(["--lr", "0.004"]).ToArray();
        var args1 = Common(run, 8, 1).Concat(["--lr", "0.002"]).ToArray();
        var r = Mpmd(args0, args1);
        Assert.That(r.Exit, Is.Not.EqualTo(0), r.Out + r.Err);
        Assert.That(r.Err, Does.Contain("the training options of rank 1 differ from rank 0's"), r.Err);
        Assert.That(r.Err, Does.Contain("\"lr\": 0.002 (rank 0: \"lr\": 0.004)"), r.Err);
        Assert.That(File.Exists(Path.Combine(run, "last", "model.safetensors")), Is.False, "nothing was trained");
    }

    [Test]
    public void RanksWithDifferentGradientBuckets_AreRefusedNamingTheVariable()
    {
        string run = Path.Combine(_folder, "buckets");
        var args = Common(run, 8, 1);
        var r = Run("mpirun", [.. MpirunOptions(), "-np", "1", "env", "SLAK_DP_BUCKET_MB=1", "dotnet", Dll, .. args, ":", "-np", "1", "dotnet", Dll, .. args], null, null);
        Assert.That(r.Exit, Is.Not.EqualTo(0), r.Out + r.Err);
        Assert.That(r.Err, Does.Contain("the gradient exchange of rank 1 differ from rank 0's"), r.Err);
        Assert.That(r.Err, Does.Contain("SLAK_DP_BUCKET_MB 1048576 values (rank 0: SLAK_DP_BUCKET_MB 262144 values)"), r.Err);
    }

    private static void AssertSameRun(string reference, string other, int steps)
    {
        var a = Losses(reference);
        var b = Losses(other);
        Assert.That(b.Count, Is.EqualTo(steps));
        Assert.That(a.Count, Is.EqualTo(steps));
        for (int i = 0; i < steps; i++)
            Assert.That(Math.Abs(a[i] - b[i]), Is.LessThanOrEqualTo(LossTolerance * Math.Abs(a[i])), $"step {i + 1}: {a[i]} vs {b[i]}");
        var wa = SafeTensorsFile.Read(Path.Combine(reference, "last", "model.safetensors"));
        var wb = SafeTensorsFile.Read(Path.Combine(other, "last", "model.safetensors"));
        Assert.That(wb.Entries.Select(e => e.Name), Is.EquivalentTo(wa.Entries.Select(e => e.Name)));
        foreach (var e in wa.Entries.Where(e => e.DType == SafeTensorsDType.F32))
        {
            var x = e.ToFloat32();
            var y = wb[e.Name].ToFloat32();
            double diff = 0, norm = 0;
            for (int i = 0; i < x.Length; i++) { diff += (double)(x[i] - y[i]) * (x[i] - y[i]); norm += (double)x[i] * x[i]; }
            Assert.That(Math.Sqrt(diff), Is.LessThanOrEqualTo(WeightTolerance * Math.Sqrt(norm) + 1e-12), $"{e.Name}: relative L2 {Math.Sqrt(diff / Math.Max(norm, 1e-30))}");
        }
        var ta = SafeTensorsFile.Read(Path.Combine(reference, "last", "trainer.safetensors"));
        var tb = SafeTensorsFile.Read(Path.Combine(other, "last", "trainer.safetensors"));
        var masks = ta.Entries.Where(e => e.Name.StartsWith("mask.", StringComparison.Ordinal)).ToList();
        Assert.That(masks, Is.Not.Empty);
        foreach (var m in masks)
            Assert.That(tb[m.Name].ToUInt8(), Is.EqualTo(m.ToUInt8()), $"{m.Name} differs after the prune/regrow rounds");
    }

    private static void AssertBitIdentical(string a, string b)
    {
        Assert.That(File.ReadAllText(Path.Combine(b, "steps.jsonl")), Is.EqualTo(File.ReadAllText(Path.Combine(a, "steps.jsonl"))), "per-step losses");
        foreach (string file in new[] { "model.safetensors", "trainer.safetensors" })
        {
            var x = SafeTensorsFile.Read(Path.Combine(a, "last", file));
            var y = SafeTensorsFile.Read(Path.Combine(b, "last", file));
            foreach (var e in x.Entries)
                Assert.That(y[e.Name].Data.ToArray(), Is.EqualTo(e.Data.ToArray()), $"{file}: {e.Name}");
        }
    }

    private static void AssertCheckpointReadable(string run)
    {
        var weights = SafeTensorsFile.Read(Path.Combine(run, "last", "model.safetensors"));
        var trainer = SafeTensorsFile.Read(Path.Combine(run, "last", "trainer.safetensors"));
        Assert.That(weights.Verified && trainer.Verified, Is.True, "checksums verified");
        Assert.That(trainer.Metadata.First(m => m.Key == "epoch").Value, Is.Not.EqualTo("0"), "an epoch's checkpoint");
    }

    private static List<double> Losses(string run) => File.ReadAllLines(Path.Combine(run, "steps.jsonl"))
        .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToList();

    private static void CopyFolder(string from, string to)
    {
        foreach (var dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(dir.Replace(from, to, StringComparison.Ordinal));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
            if (Path.GetFileName(file) != ".lock") File.Copy(file, file.Replace(from, to, StringComparison.Ordinal));
    }

    private static string? FindOnPath(string name) => (Environment.GetEnvironmentVariable("PATH") ?? "")
        .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    private static (int Exit, string Out, string Err) Cli(string[] args) => Run("dotnet", [Dll, .. args], null, null);

    private static (int Exit, string Out, string Err) Mpi(int ranks, string[] args, Dictionary<string, string>? env = null,
        Func<string, string, bool>? onLine = null) =>
        Run("mpirun", [.. MpirunOptions(), "-np", ranks.ToString(CultureInfo.InvariantCulture), "dotnet", Dll, .. args], env, onLine);

    private static (int Exit, string Out, string Err) Mpmd(string[] rank0, string[] rank1) =>
        Run("mpirun", [.. MpirunOptions(), "-np", "1", "dotnet", Dll, .. rank0, ":", "-np", "1", "dotnet", Dll, .. rank1], null, null);

    private static string Dll => Path.Combine(AppContext.BaseDirectory, "Slak.Cli.dll");

    private static string[] MpirunOptions() => Environment.UserName == "root" ? ["--oversubscribe", "--allow-run-as-root"] : ["--oversubscribe"];

    /// <summary>The pid of rank <paramref name="rank"/> of the job whose ranks carry
    /// <paramref name="marker"/>.</summary>
    private static int RankPid(string marker, int rank)
    {
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.Integer, CultureInfo.InvariantCulture, out int pid)) continue;
            string env;
            try { env = File.ReadAllText(Path.Combine(dir, "environ")); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            var vars = env.Split('\0');
            if (vars.Contains($"SLAK_TEST_MARKER={marker}") && vars.Contains($"OMPI_COMM_WORLD_RANK={rank}")
                && File.ReadAllText(Path.Combine(dir, "comm")).Trim() == "dotnet")
                return pid;
        }
        throw new InvalidOperationException($"no process of rank {rank} with marker {marker}");
    }

    /// <summary>Runs a process with SLAK_NUM_THREADS=1 and a marker in its (and its ranks') environment; calls
    /// <paramref name="onLine"/> with each stdout line until it returns true. Kills the tree after 180 s.</summary>
    private static (int Exit, string Out, string Err) Run(string file, string[] args, Dictionary<string, string>? env,
        Func<string, string, bool>? onLine)
    {
        string marker = Guid.NewGuid().ToString("N");
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["SLAK_NUM_THREADS"] = "1";
        psi.Environment["SLAK_TEST_MARKER"] = marker;
        foreach (var (k, v) in env ?? []) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var output = new System.Text.StringBuilder();
        bool fired = onLine is null;
        var reader = Task.Run(() =>
        {
            while (p.StandardOutput.ReadLine() is { } line)
            {
                output.AppendLine(line);
                if (!fired) fired = onLine!(line, marker);
            }
        });
        if (!p.WaitForExit(180_000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in 180 s; output so far:\n{output}");
        }
        reader.Wait(10_000);
        Assert.That(fired, Is.True, $"the trigger line never came:\n{output}");
        return (p.ExitCode, output.ToString(), stderr.Result);
    }
}
