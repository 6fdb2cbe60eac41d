// `slak infer`: evaluation-mode logits of a converted (or our own) checkpoint for an NCHW batch, the check a
// PyTorch user runs against their reference logits. Eval mode (BatchNorm on running statistics, no drop path), no
// autograd recording, one TensorScope per batch so memory stays bounded on any device.
using Slak.Autograd;
using Slak.IO;
using Slak.Models;
using Slak.NN;

namespace Slak.Inference;

/// <summary>Loads a model and computes logits.</summary>
public static class SlakInference
{
    /// <summary>Builds the model of <paramref name="config"/> on <paramref name="device"/> and loads the
    /// safetensors weights strictly; the model is in evaluation mode.</summary>
    public static SlakModel LoadModel(ModelConfig config, string weightsPath, Device device)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!File.Exists(weightsPath))
            throw new FileNotFoundException($"weights file '{weightsPath}' does not exist", weightsPath);
        var model = new SlakModel(config, ModuleInit.ForLoading(device));
        StateDictIO.LoadSafeTensors(model, weightsPath);
        model.Eval();
        return model;
    }

    /// <summary>Logits (N, num_classes) for <paramref name="images"/> (N*C*H*W floats, NCHW) in batches.</summary>
    public static float[] Logits(SlakModel model, ReadOnlySpan<float> images, int[] shape, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(shape);
        if (batchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be >= 1");
        if (shape.Length != 4)
            throw new ArgumentException($"input must be (N, C, H, W), got shape {Shapes.Format(shape)}", nameof(shape));
        if (shape[1] != model.Config.InChans)
            throw new ArgumentException(
                $"input has {shape[1]} channels but the model expects in_chans={model.Config.InChans} (shape " +
                $"{Shapes.Format(shape)})", nameof(shape));
        model.Config.StageSizes(shape[2], shape[3]);
        if (images.Length != Shapes.Numel(shape))
            throw new ArgumentException(
                $"input has {images.Length} values but shape {Shapes.Format(shape)} needs " +
                $"{Shapes.Numel(shape)}", nameof(images));
        int n = shape[0], classes = model.Config.NumClasses;
        int per = shape[1] * shape[2] * shape[3];
        var logits = new float[(long)n * classes];
        var device = model.Head.Weight.Device;
        model.Eval();
        using var noGrad = GradMode.NoGrad();
        for (int start = 0; start < n; start += batchSize)
        {
            int count = Math.Min(batchSize, n - start);
            using var scope = TensorScope.Begin();
            var x = Tensor.FromArray(images.Slice(start * per, count * per), [count, shape[1], shape[2], shape[3]],
                                     device);
            var y = model.Forward(x);
            y.Backend.CopyToHost(y, logits.AsSpan(start * classes, count * classes));
        }
        return logits;
    }

    /// <summary>Runs `slak infer`: reads config, weights and input, writes the logits .npy atomically; returns the
    /// logits' shape.</summary>
    public static int[] Run(InferenceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var config = ModelConfig.Load(options.ConfigPath);
        if (!File.Exists(options.InputPath))
            throw new FileNotFoundException($"input file '{options.InputPath}' does not exist", options.InputPath);
        var input = Npy.Read(options.InputPath);
        if (input.DType is not (NpyDType.Float32 or NpyDType.Float64))
            throw new InvalidDataException(
                $"{options.InputPath}: input must be float32 (or float64) NCHW, got {input.DType}");
        var shape = input.GetShape();
        if (shape.Length != 4 || shape[1] != config.InChans)
            throw new InvalidDataException(
                $"{options.InputPath}: input must be (N, {config.InChans}, H, W) for in_chans={config.InChans}, got " +
                $"{input.ShapeText}");
        var model = LoadModel(config, options.WeightsPath, options.Device);
        var logits = Logits(model, input.ToFloat32(), shape, options.BatchSize);
        int[] outShape = [shape[0], config.NumClasses];
        Npy.Write(options.OutputPath, logits, outShape);
        return outShape;
    }
}
