// The CPU training step that the step benchmarks time (train-vs-torch, dwconv-columns-step, step-fixed-costs): a
// preset on one synthetic batch (10 classes, no drop path, ERK masks at the preset's density), forward, backward,
// AdamW and the masks' upkeep, one call per step.
using Slak.Autograd;
using Slak.Diagnostics;
using Slak.Models;
using Slak.Optim;
using Slak.Sparse;
using Slak.Train;

namespace Slak.Bench.Train;

/// <summary>The pieces of the synthetic training step: the model, its optimizer and masking, and the one batch. A
/// program that times the step's phases apart (step-fixed-costs) composes its own step from them.</summary>
internal sealed record SyntheticTrainParts(
    SlakModel Model, TrainableModel Trainable, AdamW Optimizer, Masking Masking, float[] Images, int[] Labels,
    int Batch, int ImageSize)
{
    /// <summary>Sets up <paramref name="presetName"/> at <paramref name="batch"/> images per step.</summary>
    public static SyntheticTrainParts Create(string presetName, int batch)
    {
        var (model, preset) = SlakTrainable.Create(presetName, 1, 10, 0.0, 1, Device.Cpu);
        var trainable = SlakTrainable.From(model);
        var optimizer = new AdamW(model.NamedParameters(), 1e-3f, 0.05f);
        // ERK densities (SNIP, the training default, needs a scoring batch; the step's cost is the same kind).
        var masking = new Masking(model.NamedParameters(),
            new SparseOptions { Density = preset.Density, Init = SparseInit.Erk }, new SlakRandom(3))
        { MaskBinder = trainable.MaskBinder };
        masking.SetTotalSteps(1_000_000);
        masking.Initialize();
        masking.Attach(optimizer);

        int size = preset.InputSize;
        var rng = new Random(1);
        var images = new float[batch * size * size];
        for (int i = 0; i < images.Length; i++) images[i] = (float)rng.NextDouble();
        var labels = new int[batch];
        for (int i = 0; i < batch; i++) labels[i] = rng.Next(10);
        return new SyntheticTrainParts(model, trainable, optimizer, masking, images, labels, batch, size);
    }

    /// <summary>The batch as a tensor of the current scope.</summary>
    public Tensor Input() => Tensor.FromArray(Images, [Batch, 1, ImageSize, ImageSize], Device.Cpu);
}

/// <summary>A model, its masking and one step of training on synthetic data.</summary>
internal sealed record SyntheticTrainStep(SlakModel Model, Masking Masking, int ImageSize, Action Run)
{
    /// <summary>Sets up <paramref name="presetName"/> at <paramref name="batch"/> images per step;
    /// <paramref name="program"/> names the caller in the error a non-finite loss raises.</summary>
    public static SyntheticTrainStep Build(string presetName, int batch, string program)
    {
        var parts = SyntheticTrainParts.Create(presetName, batch);
        long step = 0;

        void Step()
        {
            // One profiler region per phase (free when the profiler is off): the host work between backend calls
            // (module glue, the autograd graph, scopes) is a phase's exclusive time, not time outside every region.
            using (TensorScope.Begin())
            {
                Tensor loss;
                using (OpProfiler.Measure("step.forward"))
                    loss = F.CrossEntropy(parts.Trainable.Forward(parts.Input()), parts.Labels);
                if (!float.IsFinite(loss.Item())) throw new InvalidOperationException($"{program}: loss is not finite");
                using (OpProfiler.Measure("step.backward")) loss.Backward();
            }
            using (TensorScope.Begin())
            using (GradMode.NoGrad())
            using (OpProfiler.Measure("step.update"))
            {
                parts.Optimizer.Step();
                parts.Masking.AfterOptimizerStep(++step, parts.Optimizer);
                parts.Model.ZeroGrad();
            }
        }

        return new SyntheticTrainStep(parts.Model, parts.Masking, parts.ImageSize, Step);
    }
}
