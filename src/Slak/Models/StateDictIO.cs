// Loading and saving a module's state dictionary under the reference key names. The loader accepts what converted
// official checkpoints look like (slak-facts §7): keys prefixed "module." (DDP) or "backbone." (detection /
// segmentation), the legacy branch names Decom1/Decom2 (= LoRA1/LoRA2), BatchNorm's num_batches_tracked present or
// absent (int64 in PyTorch files); everything else must match exactly, and every mismatch is reported at once.
using Slak.Autograd;
using Slak.IO;
using Slak.NN;

namespace Slak.Models;

/// <summary>State-dictionary conversion, loading and safetensors I/O for modules.</summary>
public static class StateDictIO
{
    private const string BatchCounter = "num_batches_tracked";

    /// <summary>The reference name of a checkpoint key: strips leading "module." / "backbone." (repeatedly) and
    /// renames the legacy ".Decom1." / ".Decom2." branches to ".LoRA1." / ".LoRA2.".</summary>
    public static string NormalizeKey(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        string k = key;
        while (true)
        {
            if (k.StartsWith("module.", StringComparison.Ordinal)) k = k["module.".Length..];
            else if (k.StartsWith("backbone.", StringComparison.Ordinal)) k = k["backbone.".Length..];
            else break;
        }
        return k.Replace(".Decom1.", ".LoRA1.", StringComparison.Ordinal)
            .Replace(".Decom2.", ".LoRA2.", StringComparison.Ordinal);
    }

    private static bool IsBatchCounter(string key) =>
        key == BatchCounter || key.EndsWith("." + BatchCounter, StringComparison.Ordinal);

    /// <summary>Copies <paramref name="source"/> into <paramref name="model"/>'s parameters and buffers. Keys are
    /// normalized first (<see cref="NormalizeKey"/>); num_batches_tracked is loaded when present and never reported
    /// missing or unexpected. Shape mismatches always throw; with <paramref name="strict"/> missing and unexpected
    /// keys throw too (all listed in one <see cref="StateDictMismatchException"/>). Returns the keys that were not
    /// loaded (missing) and not used (unexpected) when not strict.</summary>
    public static (IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected) Load(
        Module model, IReadOnlyDictionary<string, StateEntry> source, bool strict = true,
        string sourceName = "checkpoint")
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(source);
        if (model.IsShapeOnly)
            throw new ArgumentException("cannot load weights into a shape-only model", nameof(model));
        var normalized = new Dictionary<string, (string Original, StateEntry Entry)>(StringComparer.Ordinal);
        var duplicates = new List<string>();
        foreach (var (key, entry) in source)
        {
            string name = NormalizeKey(key);
            if (!normalized.TryAdd(name, (key, entry))) duplicates.Add($"'{normalized[name].Original}' and '{key}' " +
                $"both map to '{name}'");
        }
        if (duplicates.Count > 0)
            throw new InvalidDataException(
                $"{sourceName}: ambiguous keys after prefix stripping/renaming: {string.Join("; ", duplicates)}");

        var targets = model.StateDict().ToList();
        var missing = new List<string>();
        var shapes = new List<string>();
        var toCopy = new List<(Tensor Target, StateEntry Entry)>();
        foreach (var (name, tensor) in targets)
        {
            if (!normalized.TryGetValue(name, out var found))
            {
                if (!IsBatchCounter(name)) missing.Add(name);
                continue;
            }
            var entry = found.Entry;
            if (entry.Shape is null || entry.Data is null)
                throw new InvalidDataException($"{sourceName}: entry '{found.Original}' has no shape or data");
            if (!entry.Shape.AsSpan().SequenceEqual(tensor.Shape))
            {
                // PyTorch stores num_batches_tracked as a 0-d tensor; tolerate a (1) vector from other writers.
                bool counterOk = IsBatchCounter(name) && entry.Data.Length == 1;
                if (!counterOk)
                {
                    shapes.Add($"{name}: checkpoint {Shapes.Format(entry.Shape)} vs model " +
                        $"{Shapes.Format(tensor.Shape)}");
                    continue;
                }
            }
            if (entry.Data.Length != tensor.Numel)
                throw new InvalidDataException(
                    $"{sourceName}: entry '{found.Original}' has shape {Shapes.Format(entry.Shape)} but " +
                    $"{entry.Data.Length} values");
            toCopy.Add((tensor, entry));
        }
        var modelKeys = new HashSet<string>(targets.Select(t => t.Name), StringComparer.Ordinal);
        var unexpected = normalized.Keys.Where(k => !modelKeys.Contains(k) && !IsBatchCounter(k)).ToList();
        if (shapes.Count > 0 || (strict && (missing.Count > 0 || unexpected.Count > 0)))
            throw new StateDictMismatchException(sourceName, missing, unexpected, shapes);

        using (GradMode.NoGrad())
        {
            foreach (var (target, entry) in toCopy) target.Backend.CopyFromHost(entry.Data, target);
        }
        foreach (var (_, m) in model.NamedModules()) m.OnStateLoaded();
        return (missing, unexpected);
    }

    /// <summary>Reads a safetensors file into host entries (float dtypes converted to float32; int64 allowed for
    /// num_batches_tracked only).</summary>
    public static Dictionary<string, StateEntry> ReadSafeTensors(string path)
    {
        var file = SafeTensorsFile.Read(path);
        var result = new Dictionary<string, StateEntry>(StringComparer.Ordinal);
        foreach (var e in file.Entries)
        {
            float[] data;
            if (e.DType == SafeTensorsDType.I64)
            {
                if (!IsBatchCounter(NormalizeKey(e.Name)))
                    throw new InvalidDataException(
                        $"{path}: tensor '{e.Name}' is I64; only num_batches_tracked may be an integer tensor");
                data = [.. e.ToInt64().Select(v => (float)v)];
            }
            else
            {
                data = e.ToFloat32();
            }
            result[e.Name] = new StateEntry(e.GetShape(), data);
        }
        return result;
    }

    /// <summary>Loads a safetensors checkpoint into <paramref name="model"/> (see <see cref="Load"/>).</summary>
    public static (IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected) LoadSafeTensors(
        Module model, string path, bool strict = true) =>
        Load(model, ReadSafeTensors(path), strict, path);

    /// <summary>The model's state as host entries (reference names, state_dict order).</summary>
    public static Dictionary<string, StateEntry> ToEntries(Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var result = new Dictionary<string, StateEntry>(StringComparer.Ordinal);
        foreach (var (name, t) in model.StateDict()) result.Add(name, new StateEntry(t.ShapeArray, t.ToArray()));
        return result;
    }

    /// <summary>Writes the state dict as safetensors (atomically): F32 tensors under the reference names, and
    /// num_batches_tracked as 0-d I64 like PyTorch, so the file loads with safetensors.torch.load_file into the
    /// reference model.</summary>
    public static void SaveSafeTensors(Module model, string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var writer = new SafeTensorsWriter();
        writer.SetMetadata("format", "pt");
        if (metadata is not null)
            foreach (var (k, v) in metadata) writer.SetMetadata(k, v);
        foreach (var (name, t) in model.StateDict())
        {
            var data = t.ToArray();
            if (IsBatchCounter(name)) writer.AddInt64(name, [.. data.Select(v => (long)v)], t.Shape);
            else writer.AddFloat32(name, data, t.Shape);
        }
        writer.Write(path);
    }
}
