// Model weights as safetensors with the reference state_dict names (slak-facts §7.2): float32 for parameters and
// buffers, int64 for BatchNorm's num_batches_tracked (as PyTorch stores it), with per-tensor checksums. Loading is
// strict: every name of the module must be present with the same dtype and shape, and unknown names are rejected, all
// reported by name; afterwards every module is told (BatchNorm's batch counter follows its restored buffer).
using Slak.IO;
using Slak.NN;

namespace Slak.Train;

/// <summary>Saves and loads a module's state_dict as safetensors.</summary>
public static class ModelWeights
{
    /// <summary>Adds every state_dict entry of <paramref name="module"/> to <paramref name="writer"/>.</summary>
    public static void AddTo(SafeTensorsWriter writer, Module module, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(module);
        foreach (var (name, t) in module.StateDict()) AddTensor(writer, prefix + name, t.ToArray(), t.ShapeArray);
    }

    /// <summary>Adds one named host tensor, as int64 when it is a num_batches_tracked counter.</summary>
    public static void AddTensor(SafeTensorsWriter writer, string name, float[] data, int[] shape)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(data);
        if (name.EndsWith("num_batches_tracked", StringComparison.Ordinal))
            writer.AddInt64(name, data.Select(v => (long)v).ToArray(), shape);
        else writer.AddFloat32(name, data, shape);
    }

    /// <summary>Writes <paramref name="module"/>'s weights to <paramref name="path"/> (atomically).</summary>
    public static void Save(string path, Module module)
    {
        var writer = new SafeTensorsWriter { Checksums = true };
        writer.SetMetadata("format", "pt");
        AddTo(writer, module);
        writer.Write(path);
    }

    /// <summary>Reads one entry as float32 (int64 counters converted).</summary>
    public static float[] ReadFloat32(SafeTensorsEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return entry.DType is SafeTensorsDType.F32 or SafeTensorsDType.F16 or SafeTensorsDType.BF16 or SafeTensorsDType.F64
            ? entry.ToFloat32()
            : entry.ToInt64().Select(v => (float)v).ToArray();
    }

    /// <summary>Loads every state_dict entry of <paramref name="module"/> from <paramref name="file"/> (names
    /// with <paramref name="prefix"/>); strict.</summary>
    public static void Load(SafeTensorsFile file, Module module, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(module);
        var state = module.StateDict().ToList();
        var missing = state.Where(s => !file.Contains(prefix + s.Name)).Select(s => prefix + s.Name).ToList();
        var known = state.Select(s => prefix + s.Name).ToHashSet(StringComparer.Ordinal);
        var unexpected = prefix.Length == 0
            ? file.Names.Where(n => !known.Contains(n)).ToList()
            : file.Names.Where(n => n.StartsWith(prefix, StringComparison.Ordinal) && !known.Contains(n)).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new InvalidDataException($"{file.Source}: weights do not match the model; missing: [{string.Join(", ", missing)}], "
                + $"unexpected: [{string.Join(", ", unexpected)}]");
        foreach (var (name, t) in state)
        {
            var e = file[prefix + name];
            if (!e.Shape.SequenceEqual(t.ShapeArray))
                throw new InvalidDataException($"{file.Source}: '{prefix + name}' has shape {e.ShapeText}, the model expects ({string.Join(", ", t.ShapeArray)})");
            var dtype = name.EndsWith("num_batches_tracked", StringComparison.Ordinal) ? SafeTensorsDType.I64 : SafeTensorsDType.F32;
            if (e.DType != dtype)
                throw new InvalidDataException($"{file.Source}: '{prefix + name}' is {e.DType.Code()}, expected {dtype.Code()}");
        }
        foreach (var (name, t) in state) t.Backend.CopyFromHost(ReadFloat32(file[prefix + name]), t);
        StateLoaded(module);
    }

    /// <summary>Tells every module of <paramref name="module"/>'s tree that its state was replaced (host-side mirrors
    /// of buffers, such as BatchNorm's batch counter, follow).</summary>
    public static void StateLoaded(Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        foreach (var (_, m) in module.NamedModules()) m.OnStateLoaded();
    }
}
