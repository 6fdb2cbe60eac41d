// `slak train --init-weights W.safetensors`: the starting point of a run given from outside (for instance the initial
// state of a PyTorch run to compare with). W holds every parameter and BatchNorm buffer under the reference names
// (float; num_batches_tracked may be int64) and, optionally, sparse masks as `mask.<parameter name>` (U8 or BOOL,
// 0/1, the parameter's shape), as our checkpoints store them. The weights are loaded strictly (a missing or unknown
// name, or a wrong shape, is an error naming it); the masks are returned for the trainer, which then trains with
// exactly those masks instead of drawing new ones.
using Slak.IO;
using Slak.Models;
using Slak.NN;

namespace Slak.Train;

/// <summary>Loads initial weights and masks.</summary>
public static class InitialWeights
{
    /// <summary>Prefix of mask entries.</summary>
    public const string MaskPrefix = "mask.";

    /// <summary>Loads the weights of <paramref name="path"/> into <paramref name="model"/> and returns its masks by
    /// parameter name (empty when it holds none).</summary>
    /// <exception cref="InvalidDataException">A weight or mask is missing, unknown, of the wrong dtype or
    /// shape.</exception>
    public static IReadOnlyDictionary<string, byte[]> Load(Module model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"initial weights '{path}' do not exist", path);
        var file = SafeTensorsFile.Read(path);
        var parameters = model.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor, StringComparer.Ordinal);
        var masks = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var weights = new Dictionary<string, StateEntry>(StringComparer.Ordinal);
        foreach (var e in file.Entries)
        {
            if (e.Name.StartsWith(MaskPrefix, StringComparison.Ordinal))
            {
                string name = e.Name[MaskPrefix.Length..];
                if (!parameters.TryGetValue(name, out var p))
                    throw new InvalidDataException($"{path}: '{e.Name}' masks '{name}', which is not a parameter of the model");
                if (e.DType is not (SafeTensorsDType.U8 or SafeTensorsDType.Bool))
                    throw new InvalidDataException($"{path}: mask '{e.Name}' is {e.DType.Code()}; masks must be U8 (or BOOL) 0/1");
                if (!e.Shape.SequenceEqual(p.ShapeArray))
                    throw new InvalidDataException($"{path}: mask '{e.Name}' has shape {e.ShapeText}, the parameter has "
                        + $"({string.Join(", ", p.ShapeArray)})");
                masks[name] = e.ToUInt8();
                continue;
            }
            float[] data;
            if (e.DType == SafeTensorsDType.I64)
            {
                if (!e.Name.EndsWith("num_batches_tracked", StringComparison.Ordinal))
                    throw new InvalidDataException($"{path}: '{e.Name}' is I64; only num_batches_tracked may be an integer tensor");
                data = [.. e.ToInt64().Select(v => (float)v)];
            }
            else data = e.ToFloat32();
            weights[e.Name] = new StateEntry(e.GetShape(), data);
        }
        StateDictIO.Load(model, weights, strict: true, sourceName: path);
        return masks;
    }
}
