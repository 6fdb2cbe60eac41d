// What the trainer needs from a network, independent of which model family built it: the module (parameters,
// buffers, train/eval), its forward function (images to logits), the generator its stochastic layers draw from
// (drop path; checkpointed so a resumed run draws the same numbers) and the config.json text that rebuilds it.
using Slak.NN;

namespace Slak.Train;

/// <summary>A classifier the trainer can run, checkpoint and evaluate.</summary>
/// <param name="Module">The network.</param>
/// <param name="Forward">Images (N, C, H, W) to logits (N, K).</param>
/// <param name="Random">Generator of the network's stochastic layers (null: none).</param>
/// <param name="ConfigJson">The model config written next to the weights (null: none).</param>
public sealed record TrainableModel(Module Module, Func<Tensor, Tensor> Forward, SlakRandom? Random, string? ConfigJson)
{
    /// <summary>The device of the first parameter.</summary>
    public Device Device => Module.Parameters().FirstOrDefault()?.Device
        ?? throw new InvalidOperationException("the model has no parameters");

    /// <summary>Called with (parameter name, mask or null) when sparse masks are created (null: ignore); lets
    /// depthwise modules skip pruned taps.</summary>
    public Action<string, Tensor?>? MaskBinder { get; init; }
}
