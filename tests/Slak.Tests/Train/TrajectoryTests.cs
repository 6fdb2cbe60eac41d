// Training checked against PyTorch step by step (issue 26): `slak train` in its trajectory mode, run in-process through
// the CLI command, from the initial weights and masks of tests/TestData/trajectory (made by
// tools/make_trajectory_fixture.py: 20 steps of stock torch.optim.AdamW, nn.BatchNorm2d and
// F.cross_entropy(label_smoothing=0.1) in float64 on 160 Fashion-MNIST images, masks at density 0.6 re-applied after
// every step). Every step's loss must be within 1e-5 relative and its learning rate equal to the reference's
// cosine_scheduler; every final tensor (BatchNorm running statistics included) within 1e-4 relative L2, with
// num_batches_tracked exact and every pruned weight exactly 0. Both sparse semantics must give this trajectory (AdamW
// is element-wise, so masking the moments of pruned weights cannot change live ones). cpu runs all 20 steps; cuda-emu,
// about 20x slower, runs the fixture's 5-step variant (the first 40 images, --limit 40; its 1-step warmup is floor(0.25
// x 5)); a real GPU (cuda, skipped without one) runs all 20. Measured when written: float32 vs float64 differs by ~2e-7
// in the losses and ~3e-6 in the final tensors on both devices, so the tolerances leave a wide margin; and they catch
// recipe slips (measured by re-running the float64 reference with one change): no label smoothing moves the losses by
// 2e-2, a schedule one step early by 2e-2, weight decay 0.04 instead of 0.05 by 3e-5 (losses) and 8e-4 (tensors),
// BatchNorm momentum 0.11 instead of 0.1 the running statistics by 2e-1.
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using NUnit.Framework;
using Slak.Backends.Cuda;
using Slak.IO;
using Slak.Tests.Models;
using Slak.Train;

namespace Slak.Tests.Train;

public class TrajectoryTests
{
    private static string Fixture(string name) => TestPaths.Data("trajectory", name);

    [TestCase("cpu", "ours", false)]
    [TestCase("cpu", "reference", false)]
    [TestCase("cuda-emu", "ours", true)]
    [TestCase("cuda-emu", "reference", true)]
    [TestCase("cuda", "ours", false)]
    [TestCase("cuda", "reference", false)]
    public void TrainingMatchesPyTorchStepByStep(string device, string semantics, bool shortRun)
    {
        if (device != "cpu" && !CudaBackend.IsAvailable(Device.Parse(device), out string why)) Assert.Ignore($"{device} unavailable: {why}");
        using var expected = JsonDocument.Parse(File.ReadAllText(Fixture("expected.json")));
        var root = expected.RootElement;
        var recipe = root.GetProperty("recipe");
        string run = Path.Combine(Path.GetTempPath(), $"slak-trajectory-{Guid.NewGuid():N}");
        try
        {
            string R(string key) => recipe.GetProperty(key).GetDouble().ToString("R", CultureInfo.InvariantCulture);
            var args = new List<string>
            {
                "--model-config", Fixture("config.json"), "--init-weights", Fixture("init.safetensors"),
                "--data", Fixture("data.npz"), "--no-shuffle", "--batch-size", R("batch_size"), "--epochs", R("epochs"),
                "--lr", R("lr"), "--min-lr", R("min_lr"), "--warmup-epochs", R("warmup_epochs"),
                "--weight-decay", R("weight_decay"), "--smoothing", R("smoothing"),
                "--drop-path", "0", "--mixup", "0", "--cutmix", "0", "--ema", "0", "--update-frequency", "0",
                "--sparse-semantics", semantics, "--device", device, "--log-every", "0", "--out", run,
            };
            if (shortRun) args.AddRange(["--limit", root.GetProperty("short_images").GetInt32().ToString(CultureInfo.InvariantCulture)]);
            int rc = new Slak.Cli.Commands.TrainCommand().Build().Parse(args)
                .Invoke(new System.CommandLine.InvocationConfiguration { EnableDefaultExceptionHandler = false });
            Assert.That(rc, Is.Zero, "slak train exit code");

            var want = root.GetProperty(shortRun ? "steps_short" : "steps").EnumerateArray()
                .Select(s => new StepRecord(s.GetProperty("step").GetInt64(), s.GetProperty("loss").GetDouble(), s.GetProperty("lr").GetDouble()))
                .ToList();
            var got = StepLog.Read(Path.Combine(run, StepLog.FileName));
            Assert.That(got.Select(r => r.Step), Is.EqualTo(want.Select(r => r.Step)), "steps.jsonl step numbers");
            double worstLoss = 0;
            for (int i = 0; i < want.Count; i++)
            {
                double rel = Math.Abs(got[i].Loss - want[i].Loss) / Math.Abs(want[i].Loss);
                worstLoss = Math.Max(worstLoss, rel);
                Assert.That(rel, Is.LessThanOrEqualTo(1e-5), $"step {want[i].Step}: loss {got[i].Loss:R}, PyTorch {want[i].Loss:R}");
                Assert.That(got[i].Lr, Is.EqualTo(want[i].Lr).Within(1e-15 * Math.Abs(want[i].Lr) + 1e-300),
                    $"step {want[i].Step}: lr {got[i].Lr:R}, reference cosine_scheduler {want[i].Lr:R}");
            }

            var final = SafeTensorsFile.Read(Fixture(shortRun ? "final_short.safetensors" : "final.safetensors"));
            var ours = SafeTensorsFile.Read(Path.Combine(run, "last", "model.safetensors"));
            var init = SafeTensorsFile.Read(Fixture("init.safetensors"));
            Assert.That(ours.Names.Order(), Is.EqualTo(final.Names.Order()), "final state_dict names");
            double worstTensor = 0;
            string worstName = "";
            foreach (var e in final.Entries)
            {
                var mine = ours[e.Name];
                Assert.That(mine.GetShape(), Is.EqualTo(e.GetShape()), e.Name);
                if (e.DType == SafeTensorsDType.I64)
                {
                    Assert.That(mine.ToInt64(), Is.EqualTo(e.ToInt64()), $"{e.Name} (num_batches_tracked)");
                    continue;
                }
                var reference = MemoryMarshal.Cast<byte, double>(e.Data.Span);
                var values = mine.ToFloat32();
                double diff = 0, norm = 0;
                for (int i = 0; i < values.Length; i++)
                {
                    diff += (values[i] - reference[i]) * (values[i] - reference[i]);
                    norm += reference[i] * reference[i];
                }
                double rel = Math.Sqrt(diff) / Math.Max(Math.Sqrt(norm), 1e-30);
                if (rel > worstTensor) (worstTensor, worstName) = (rel, e.Name);
                Assert.That(rel, Is.LessThanOrEqualTo(1e-4), $"{e.Name}: relative L2 difference from PyTorch");
                if (init.TryGet(InitialWeights.MaskPrefix + e.Name, out var maskEntry))
                {
                    var mask = maskEntry.ToUInt8();
                    for (int i = 0; i < mask.Length; i++)
                        if (mask[i] == 0 && values[i] != 0)
                            Assert.Fail($"{e.Name}[{i}] is pruned but holds {values[i]:R}");
                }
            }
            TestContext.Out.WriteLine(FormattableString.Invariant(
                $"{device}/{semantics}: {got.Count} steps, worst loss rel diff {worstLoss:E2}, worst tensor rel L2 {worstTensor:E2} ({worstName})"));
        }
        finally
        {
            if (Directory.Exists(run)) Directory.Delete(run, recursive: true);
        }
    }
}
