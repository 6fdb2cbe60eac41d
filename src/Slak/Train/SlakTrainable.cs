// Adapts a SlakModel to the trainer: its forward, its drop-path generator (checkpointed for exact resume), its
// config.json, and the binding of sparse masks to the depthwise modules so that their kernels skip pruned taps.
using Slak.Models;
using Slak.NN;
using Slak.Sparse;

namespace Slak.Train;

/// <summary>Builds <see cref="TrainableModel"/>s from SLaK models.</summary>
public static class SlakTrainable
{
    /// <summary>Wraps <paramref name="model"/>; gives it a drop-path generator when it has none. Under the
    /// reference semantics the depthwise weight gradients stay dense (MaskedGrad off), as in the reference
    /// code.</summary>
    public static TrainableModel From(SlakModel model, SparseSemantics semantics = SparseSemantics.Ours)
    {
        ArgumentNullException.ThrowIfNull(model);
        model.DropPathRandom ??= new SlakRandom(0);
        var depthwise = model.NamedModules()
            .Where(m => m.Module is DepthwiseConv2d)
            .ToDictionary(m => m.Name + ".weight", m => (DepthwiseConv2d)m.Module, StringComparer.Ordinal);
        return new TrainableModel(model, model.Forward, model.DropPathRandom, model.Config.ToJson())
        {
            MaskBinder = (name, mask) =>
            {
                if (!depthwise.TryGetValue(name, out var dw)) return;
                dw.WeightMask = mask;
                dw.MaskedGrad = semantics == SparseSemantics.Ours;
            },
        };
    }

    /// <summary>A freshly initialised model of <paramref name="preset"/> for a data set with
    /// <paramref name="channels"/> channels and <paramref name="classes"/> classes, on
    /// <paramref name="device"/>.</summary>
    public static (SlakModel Model, ModelPreset Preset) Create(string preset, int channels, int classes, double dropPath, ulong seed, Device device)
    {
        var p = ModelPresets.Get(preset);
        var config = p.Config with { InChans = channels, NumClasses = classes, DropPathRate = dropPath };
        var model = new SlakModel(config.Validate(), ModuleInit.FromRandom(new SlakRandom(seed), device));
        return (model, p);
    }
}
