// `slak eval` on image folders (issue 21): a run trained on the committed generated folder is evaluated again by
// `slak eval --run`, and the top-1 and loss of its last weights on test/ and on the validation hold-out equal what
// the trainer recorded in metrics.jsonl for that epoch (same transform, normalisation and images); a model whose input
// channels or classes do not fit the folder is refused with a message naming both numbers.
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using NUnit.Framework;
using Slak.Cli.Commands;

namespace Slak.Tests.Data;

public partial class ImageFolderEvalTests
{
    private string _scratch = "";

    [SetUp]
    public void SetUp() => _scratch = ImageTestData.NewScratchFolder();

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_scratch)) Directory.Delete(_scratch, recursive: true);
    }

    private static (int Rc, string Out) Run(Command command, params string[] args)
    {
        var output = new StringWriter();
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        Console.SetOut(output);
        Console.SetError(output);
        int rc;
        try
        {
            rc = command.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException)
        {
            rc = 1;
            output.WriteLine(e.Message);
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
        return (rc, output.ToString());
    }

    [GeneratedRegex(@"(test|val|train) top-1 (\d+\.\d\d)%, top-5 (\d+\.\d\d)%, loss (\d+\.\d{4}) \((\d+) images")]
    private static partial Regex ResultLine();

    [Test]
    public void EvalOfAnImageFolderRunRepeatsTheTrainersTestAndValidationScores()
    {
        string run = Path.Combine(_scratch, "run"), data = ImageTestData.Path("fmnist64");
        var (rc, text) = Run(new TrainCommand().Build(), "--data", data, "--epochs", "1", "--batch-size", "16", "--limit", "48",
            "--device", "cpu", "--out", run, "--log-every", "0", "--seed", "3");
        Assert.That(rc, Is.Zero, text);
        using var metrics = JsonDocument.Parse(File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Single());
        double Recorded(string key) => metrics.RootElement.GetProperty(key).GetDouble();

        foreach (var (split, count, prefix) in new[] { ("test", 80, "test"), ("val", 24, "val") })
        {
            (rc, text) = Run(new EvalCommand().Build(), "--run", run, "--checkpoint", "last", "--data", data, "--split", split,
                "--device", "cpu", "--batch-size", "7");
            TestContext.Out.WriteLine(text);
            Assert.That(rc, Is.Zero, text);
            Assert.That(text, Does.Contain("read as 3x32x32 (resize 36, centre crop)"));
            var m = ResultLine().Match(text);
            Assert.That(m.Success, Is.True, text);
            Assert.That(m.Groups[1].Value, Is.EqualTo(split));
            Assert.That(int.Parse(m.Groups[5].Value, CultureInfo.InvariantCulture), Is.EqualTo(count));
            double top1 = double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
            double loss = double.Parse(m.Groups[4].Value, CultureInfo.InvariantCulture);
            // Printed with 2 and 4 decimals; the trainer evaluated in batches of its own size (float rounding only).
            Assert.That(top1, Is.EqualTo(Recorded(prefix + "_top1")).Within(0.005), $"{split} top-1");
            Assert.That(loss, Is.EqualTo(Recorded(prefix + "_loss")).Within(2e-4), $"{split} loss");
        }
        Assert.That(text, Does.Contain("val (held out of train/, fraction 0.1)"));
    }

    [Test]
    public void EvalRefusesAModelThatDoesNotFitTheImageFolder()
    {
        var config = new Slak.Models.ModelConfig
        {
            InChans = 1, NumClasses = 10, Depths = [1, 1, 1, 1], Dims = [8, 16, 32, 64], KernelSize = [7, 7, 5, 5, 3],
        }.Validate();
        string configPath = Path.Combine(_scratch, "config.json"), weights = Path.Combine(_scratch, "model.safetensors");
        config.Save(configPath);
        var model = new Slak.Models.SlakModel(config, Slak.NN.ModuleInit.FromRandom(new Slak.SlakRandom(1), Slak.Device.Cpu));
        Slak.Models.StateDictIO.SaveSafeTensors(model, weights);
        var (rc, text) = Run(new EvalCommand().Build(), "--model-config", configPath, "--weights", weights,
            "--data", ImageTestData.Path("fmnist64"), "--device", "cpu");
        Assert.That(rc, Is.Not.Zero);
        Assert.That(text, Does.Contain("RGB (3 channels)").And.Contain("in_chans=1"));

        config = config with { InChans = 3, NumClasses = 7 };
        config.Save(configPath);
        model = new Slak.Models.SlakModel(config, Slak.NN.ModuleInit.FromRandom(new Slak.SlakRandom(1), Slak.Device.Cpu));
        Slak.Models.StateDictIO.SaveSafeTensors(model, weights);
        (rc, text) = Run(new EvalCommand().Build(), "--model-config", configPath, "--weights", weights,
            "--data", ImageTestData.Path("fmnist64"), "--device", "cpu");
        Assert.That(rc, Is.Not.Zero);
        Assert.That(text, Does.Contain("has 10 classes but the model has num_classes=7"));
    }
}
