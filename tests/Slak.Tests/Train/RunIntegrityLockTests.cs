// One writer per run folder (issue 30): the lock is exclusive across processes (a second `slak train` is refused
// at start-up naming the holder's process id, exit 1, no stack trace), it is an OS lock that dies with its holder,
// and an existing run is only replaced with --overwrite.
using System.Diagnostics;
using NUnit.Framework;
using Slak.Train;

namespace Slak.Tests.Train;

public class RunIntegrityLockTests
{
    private string _folder = "";

    [SetUp]
    public void SetUp()
    {
        _folder = Path.Combine(Path.GetTempPath(), "slak-lock-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_folder);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public void ASecondLockIsRefusedNamingTheHolder()
    {
        string run = Path.Combine(_folder, "run");
        using (var first = RunLock.Acquire(run))
        {
            Assert.That(() => RunLock.Acquire(run), Throws.InstanceOf<IOException>()
                .With.Message.Contains($"process {Environment.ProcessId}").And.Message.Contains("in use"));
            Assert.That(RunLock.ReadHolder(first.Path), Is.EqualTo(Environment.ProcessId.ToString()));
        }
        using var again = RunLock.Acquire(run);
        Assert.That(again.Path, Does.EndWith(".lock"));
    }

    [Test]
    public void ASecondTrainerProcessIsRefusedAtStartUp()
    {
        string run = Path.Combine(_folder, "run");
        using var held = RunLock.Acquire(run);
        var (exit, _, err) = RunIntegrityKit.RunCli("train", "--out", run, "--data", _folder, "--epochs", "1");
        Assert.That(exit, Is.EqualTo(1), err);
        Assert.That(err, Does.Contain($"process {Environment.ProcessId}").And.Contain("in use by another trainer"));
        Assert.That(err, Does.Not.Contain("   at "), "no stack trace");
        Assert.That(Directory.GetFileSystemEntries(run).Select(Path.GetFileName), Is.EquivalentTo(new[] { ".lock" }), "nothing written");
    }

    [Test]
    public void TheLockDiesWithItsHolder()
    {
        string run = Path.Combine(_folder, "run");
        Directory.CreateDirectory(run);
        string lockPath = Path.Combine(run, RunLock.FileName);
        // flock(1) takes the same advisory lock as .NET's FileShare.None (-o: only flock itself holds it, not its
        // sleeping child); kill it with SIGKILL.
        Process holder;
        try
        {
            holder = Process.Start(new ProcessStartInfo("flock", ["-x", "-o", lockPath, "sleep", "60"]) { UseShellExecute = false })!;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            Assert.Ignore("flock(1) is not installed");
            return;
        }
        try
        {
            var until = DateTime.UtcNow.AddSeconds(20);
            bool refused = false;
            while (!refused && DateTime.UtcNow < until)
            {
                try
                {
                    RunLock.Acquire(run).Dispose();
                    Thread.Sleep(50);
                }
                catch (IOException e)
                {
                    Assert.That(e.Message, Does.Contain("in use by another trainer"));
                    refused = true;
                }
            }
            Assert.That(refused, Is.True, "the lock held by flock(1) must refuse RunLock");
        }
        finally
        {
            holder.Kill(entireProcessTree: true);
            holder.WaitForExit();
        }
        RunLock? mine = null;
        for (int i = 0; i < 100 && mine is null; i++)
        {
            try
            {
                mine = RunLock.Acquire(run); // the kernel releases the lock as the killed process exits
            }
            catch (IOException) when (i < 99)
            {
                Thread.Sleep(50);
            }
        }
        using var held = mine;
        Assert.That(RunLock.ReadHolder(lockPath), Is.EqualTo(Environment.ProcessId.ToString()));
    }

    [Test]
    public void AnExistingRunIsRefusedWithoutOverwrite()
    {
        string run = Path.Combine(_folder, "run");
        RunIntegrityKit.TrainRun(run, 5, epochs: 1);
        byte[] before = File.ReadAllBytes(Path.Combine(run, "last", "model.safetensors"));
        var (exit, _, err) = RunIntegrityKit.RunCli("train", "--out", run, "--data", _folder, "--epochs", "1");
        Assert.That(exit, Is.EqualTo(1), err);
        Assert.That(err, Does.Contain("already holds a run").And.Contain("--resume").And.Contain("--overwrite"));
        Assert.That(File.ReadAllBytes(Path.Combine(run, "last", "model.safetensors")), Is.EqualTo(before));
        Assert.That(RunIntegrityKit.Resume(run, 5).Epoch, Is.EqualTo(1), "the previous checkpoint still loads");

        // --overwrite removes the old run first (then this data folder, which holds no data set, fails the run).
        (exit, var output, err) = RunIntegrityKit.RunCli("train", "--out", run, "--data", _folder, "--epochs", "1", "--overwrite");
        Assert.That(output, Does.Contain("--overwrite: removing"));
        Assert.That(exit, Is.EqualTo(1), err);
        Assert.That(RunFolders.HoldsRun(run), Is.False);
    }

    [Test]
    public void AFolderWithOnlyOptionsHoldsNoRun()
    {
        // Interrupted before the first checkpoint: nothing to resume, and a new run may start there.
        File.WriteAllText(Path.Combine(_folder, "options.json"), "{}");
        Assert.That(RunFolders.HoldsRun(_folder), Is.False);
        Assert.That(Cli.Training.ResumeStart.HasCheckpoint(_folder), Is.False);
        Assert.That(() => RunFolders.PrepareNewRun(_folder, overwrite: false, null), Throws.Nothing);
    }
}
