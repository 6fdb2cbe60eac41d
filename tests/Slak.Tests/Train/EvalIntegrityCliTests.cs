// `slak eval` on weights that produce non-finite outputs (issue 30): an error naming the problem with exit 1, never a
// "loss Infinity" result with exit 0. Through the real process, on a tiny model and the installed Fashion-MNIST.
using System.Diagnostics;
using System.Runtime.InteropServices;
using NUnit.Framework;
using Slak.Models;
using Slak.NN;

namespace Slak.Tests.Train;

public class EvalIntegrityCliTests
{
    private string _folder = "";

    [SetUp]
    public void SetUp()
    {
        if (!Slak.IO.FashionMnist.IsAvailable(null))
            Assert.Ignore($"Fashion-MNIST is not installed under {Slak.IO.FashionMnist.DefaultFolder} (.ci/setup installs it)");
        _folder = Path.Combine(Path.GetTempPath(), "slak-eval-integrity", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_folder);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public void EvalOfWeightsWithNonFiniteOutputsIsAnError()
    {
        var config = new ModelConfig
        {
            InChans = 1, NumClasses = 10, Depths = [1, 1, 1, 1], Dims = [8, 16, 32, 64], KernelSize = [7, 7, 5, 5, 3],
            Decom = true,
        }.Validate();
        string configPath = Path.Combine(_folder, "config.json"), weights = Path.Combine(_folder, "model.safetensors");
        config.Save(configPath);
        StateDictIO.SaveSafeTensors(new SlakModel(config, ModuleInit.FromRandom(new SlakRandom(3), Device.Cpu)), weights);

        var (exit, output, err) = RunIntegrityKit.RunCli("eval", "--model-config", configPath, "--weights", weights, "--device", "cpu");
        Assert.That(exit, Is.Zero, $"the intact weights evaluate: {err}");
        Assert.That(output, Does.Contain("top-1"));

        RunIntegrityKit.Rewrite(weights, (entries, _) =>
        {
            var head = entries["head.bias"];
            var values = new float[head.Data.Length / 4];
            values[3] = float.NaN;
            entries["head.bias"] = (head.DType, head.Shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
        }, checksums: false);
        (exit, output, err) = RunIntegrityKit.RunCli("eval", "--model-config", configPath, "--weights", weights, "--device", "cpu");
        Assert.That(exit, Is.EqualTo(1), $"stdout: {output}\nstderr: {err}");
        Assert.That(err, Does.StartWith("slak: error: ").And.Contain("not finite").Or.Contain("non-finite"));
        Assert.That(output + err, Does.Not.Contain("loss NaN").And.Not.Contain("loss Infinity"));
        Assert.That(err, Does.Not.Contain("   at "), "no stack trace");
    }
}

public class InterruptCliTests
{
    /// <summary>True when SIGINT (2) is in this process's ignored-signal mask (/proc/self/status, SigIgn).</summary>
    private static bool SigIntIgnored()
    {
        string? line = File.Exists("/proc/self/status") ? File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal)) : null;
        return line is not null && (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & (1UL << (2 - 1))) != 0;
    }

    [DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);

    /// <summary>SIGINT during the first epoch (before any checkpoint): exit 130 and a message that there is nothing to
    /// resume, never a `--resume` suggestion that would then fail.</summary>
    [Test]
    public void InterruptBeforeTheFirstCheckpointSaysThereIsNothingToResume()
    {
        if (!Slak.IO.FashionMnist.IsAvailable(null))
            Assert.Ignore($"Fashion-MNIST is not installed under {Slak.IO.FashionMnist.DefaultFolder} (.ci/setup installs it)");
        // A process started as a background job of a non-interactive shell has SIGINT ignored, and so has every child
        // it starts (the .NET runtime keeps an inherited SIG_IGN): the interrupt could not reach `slak train`.
        if (SigIntIgnored())
            Assert.Ignore("SIGINT is ignored in this test process (started as a background job without job control), so its children cannot be interrupted");
        string folder = Path.Combine(Path.GetTempPath(), "slak-interrupt", Guid.NewGuid().ToString("N"));
        try
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Slak.Cli.dll"));
            foreach (var a in new[] { "train", "--epochs", "2", "--limit", "40000", "--device", "cpu", "--out", folder })
                psi.ArgumentList.Add(a);
            psi.Environment["SLAK_NUM_THREADS"] = "1";
            using var p = Process.Start(psi)!;
            var stderr = p.StandardError.ReadToEndAsync();
            var lines = new List<string>();
            // Interrupt as soon as training has started (the run folder line), far from the end of epoch 1.
            for (string? line; (line = p.StandardOutput.ReadLine()) is not null;)
            {
                lines.Add(line);
                if (line.StartsWith("run folder:", StringComparison.Ordinal)) break;
            }
            Assert.That(Kill(p.Id, 2), Is.Zero, "SIGINT sent");
            var rest = p.StandardOutput.ReadToEndAsync();
            if (!p.WaitForExit(120_000))
            {
                p.Kill(entireProcessTree: true);
                Assert.Fail("slak train did not stop within 120 s of SIGINT");
            }
            string err = stderr.Result, output = string.Join('\n', lines) + rest.Result;
            Assert.That(p.ExitCode, Is.EqualTo(130), $"stdout: {output}\nstderr: {err}");
            Assert.That(err, Does.Contain("nothing to resume").And.Not.Contain("--resume"), err);
            Assert.That(Directory.Exists(Path.Combine(folder, "last")), Is.False, "no checkpoint was written");
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }
}
