// config.json reading and writing. Parsed by hand over JsonDocument so that every problem names the key: a missing
// key, an unknown key (a typo would otherwise silently build the wrong architecture), a wrong JSON type, a
// non-integer where an integer is needed, then the range checks of Validate(). Writes are atomic.
using System.Text;
using System.Text.Json;
using Slak.IO;

namespace Slak.Models;

public sealed partial record ModelConfig
{
    /// <summary>The JSON keys, in the reference constructor's order.</summary>
    public static IReadOnlyList<string> JsonKeys { get; } =
    [
        "in_chans", "num_classes", "depths", "dims", "drop_path_rate", "layer_scale_init_value", "head_init_scale",
        "kernel_size", "width_factor", "Decom", "bn",
    ];

    /// <summary>Serializes to indented JSON with exactly <see cref="JsonKeys"/>.</summary>
    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("in_chans", InChans);
            w.WriteNumber("num_classes", NumClasses);
            WriteInts(w, "depths", Depths);
            WriteInts(w, "dims", Dims);
            w.WriteNumber("drop_path_rate", DropPathRate);
            w.WriteNumber("layer_scale_init_value", LayerScaleInitValue);
            w.WriteNumber("head_init_scale", HeadInitScale);
            WriteInts(w, "kernel_size", KernelSize);
            w.WriteNumber("width_factor", WidthFactor);
            w.WriteBoolean(nameof(Decom), Decom);  // the reference configs' key
            w.WriteBoolean("bn", Bn);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    private static void WriteInts(Utf8JsonWriter w, string key, IReadOnlyList<int> values)
    {
        w.WriteStartArray(key);
        foreach (int v in values) w.WriteNumberValue(v);
        w.WriteEndArray();
    }

    /// <summary>Writes config.json atomically (after validating).</summary>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Validate();
        AtomicFile.WriteAllText(path, ToJson());
    }

    /// <summary>Reads and validates a config.json.</summary>
    public static ModelConfig Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"model config '{path}' does not exist", path);
        return FromJson(File.ReadAllText(path), path);
    }

    /// <summary>Parses and validates config JSON; <paramref name="source"/> names it in messages.</summary>
    public static ModelConfig FromJson(string json, string source = "model config")
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not valid JSON ({e.Message})", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException(
                    $"{source}: expected a JSON object with keys {string.Join(", ", JsonKeys)}, got {root.ValueKind}");
            var present = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            foreach (var p in root.EnumerateObject())
            {
                if (!JsonKeys.Contains(p.Name))
                    throw new InvalidDataException(
                        $"{source}: unknown key '{p.Name}' (allowed: {string.Join(", ", JsonKeys)})");
                if (!present.TryAdd(p.Name, p.Value))
                    throw new InvalidDataException($"{source}: key '{p.Name}' appears twice");
            }
            var missing = JsonKeys.Where(k => !present.ContainsKey(k)).ToList();
            if (missing.Count > 0)
                throw new InvalidDataException($"{source}: missing key(s) {string.Join(", ", missing)}");
            ModelConfig config;
            try
            {
                config = new ModelConfig
                {
                    InChans = Int(present, "in_chans", source),
                    NumClasses = Int(present, "num_classes", source),
                    Depths = Ints(present, "depths", source),
                    Dims = Ints(present, "dims", source),
                    DropPathRate = Number(present, "drop_path_rate", source),
                    LayerScaleInitValue = Number(present, "layer_scale_init_value", source),
                    HeadInitScale = Number(present, "head_init_scale", source),
                    KernelSize = Ints(present, "kernel_size", source),
                    WidthFactor = Number(present, "width_factor", source),
                    Decom = Bool(present, "Decom", source, allowNull: true),
                    Bn = Bool(present, "bn", source, allowNull: false),
                };
                return config.Validate();
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"{source}: {e.Message}", e);
            }
        }
    }

    private static int Int(Dictionary<string, JsonElement> p, string key, string source) => ToInt(p[key], key, source);

    private static int ToInt(JsonElement e, string key, string source)
    {
        if (e.ValueKind == JsonValueKind.Number)
        {
            if (e.TryGetInt32(out int i)) return i;
            // 3.0 is accepted as 3 (JSON writers of floats); 3.5 is not.
            if (e.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) <= int.MaxValue) return (int)d;
        }
        throw new InvalidDataException($"{source}: {key} must be an integer, got {e.GetRawText()}");
    }

    private static int[] Ints(Dictionary<string, JsonElement> p, string key, string source)
    {
        var e = p[key];
        if (e.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{source}: {key} must be an array of integers, got {e.GetRawText()}");
        return [.. e.EnumerateArray().Select(x => ToInt(x, key, source))];
    }

    private static double Number(Dictionary<string, JsonElement> p, string key, string source)
    {
        var e = p[key];
        if (e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out double d)) return d;
        throw new InvalidDataException($"{source}: {key} must be a number, got {e.GetRawText()}");
    }

    private static bool Bool(Dictionary<string, JsonElement> p, string key, string source, bool allowNull)
    {
        var e = p[key];
        return e.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Null when allowNull => false,
            _ => throw new InvalidDataException(
                $"{source}: {key} must be true or false{(allowNull ? " (or null)" : "")}, got {e.GetRawText()}"),
        };
    }
}
