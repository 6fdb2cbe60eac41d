// docs/csharp.md, "Models" and "Training from code": a SLaK model from a preset and from a config, sparse training
// with the Trainer (no command line), and the weights saved and loaded back with the official parameter names. The
// data is made here (a small learnable task: which quadrant holds a bright square), so the sample needs no download.
using Slak;
using Slak.Data;
using Slak.Inference;
using Slak.Models;
using Slak.NN;
using Slak.Train;

// #region models
// A preset: the SLaK architecture in small for 28x28 images (15x3 + 3x15 + 3x3 branches, width 1.3).
var (nano, preset) = SlakTrainable.Create("slak_nano", channels: 1, classes: 4, dropPath: 0.1, seed: 0, Device.Cpu);
Console.WriteLine($"preset {preset.Name}: {nano.ParameterCount():N0} parameters, input {preset.InputSize}x{preset.InputSize}");

// A config of your own: ConvNeXt-style stages whose depthwise convolution is SLaK's decomposed large kernel.
var config = new ModelConfig
{
    InChans = 1, NumClasses = 4, Depths = [1, 1, 1, 1], Dims = [8, 16, 32, 64],
    KernelSize = [13, 11, 9, 7, 3], Decom = true, WidthFactor = 1.0,
}.Validate();
var model = new SlakModel(config, ModuleInit.FromRandom(new SlakRandom(0), Device.Cpu));
// #endregion

// #region training
var train = Quadrants(count: 512, seed: 1);
var test = Quadrants(count: 128, seed: 2);
var options = new TrainOptions
{
    Epochs = 4, BatchSize = 32, Lr = 4e-3, WarmupEpochs = 0.5, DropPath = 0, Mixup = 0, Cutmix = 0,
    Sparse = true, Density = 0.6, UpdateFrequency = 8, Device = "cpu", Seed = 0,
};
// 10 % of `train` is held out for validation (best/ is chosen on it); `test` is scored after the last epoch.
string runFolder = Path.Combine(Path.GetTempPath(), $"slak-sample-{Environment.ProcessId}");
var trainer = new Trainer(SlakTrainable.From(model), train, test, options, runFolder);
trainer.Log += line => Console.Error.WriteLine(line);
var result = trainer.Run();
var last = result.Last!;
Console.WriteLine($"trained {last.Epoch} epochs: validation top-1 {last.ValTop1:F1}%, test top-1 {last.TestTop1:F1}%");
// #endregion

// #region weights
// Weights go to safetensors under the reference code's names (with the BatchNorm buffers and the masks' zeros).
string weights = Path.Combine(runFolder, "model.safetensors");
StateDictIO.SaveSafeTensors(model, weights);
var reloaded = SlakInference.LoadModel(config, weights, Device.Cpu);
var batch = test.Images.AsSpan(0, 8 * test.ImageSize);
int[] shape = [8, 1, test.Height, test.Width];
var before = SlakInference.Logits(model, batch, shape, batchSize: 8);
var after = SlakInference.Logits(reloaded, batch, shape, batchSize: 8);
Console.WriteLine($"reloaded weights: logits equal: {before.SequenceEqual(after)}");
// #endregion
Directory.Delete(runFolder, recursive: true);

// Images of 32x32 with a bright 8x8 square in one quadrant (the label) and noise elsewhere.
static ImageDataset Quadrants(int count, ulong seed)
{
    const int side = 32;
    var rng = new SlakRandom(seed);
    var images = new float[count * side * side];
    var labels = new int[count];
    for (int i = 0; i < count; i++)
    {
        int label = rng.NextInt(4);
        labels[i] = label;
        var img = images.AsSpan(i * side * side, side * side);
        for (int p = 0; p < img.Length; p++) img[p] = 0.2f * rng.NextNormal();
        int y0 = (label / 2) * 16 + 4 + rng.NextInt(4), x0 = (label % 2) * 16 + 4 + rng.NextInt(4);
        for (int y = y0; y < y0 + 8; y++)
            for (int x = x0; x < x0 + 8; x++) img[y * side + x] += 2f;
    }
    return new ImageDataset(images, labels, channels: 1, height: side, width: side, classCount: 4);
}
