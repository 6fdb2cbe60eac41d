// Validation of the safetensors JSON header (the half of SafeTensorsFile that never touches tensor data).
using System.Text.Json;
using System.Text.Unicode;

namespace Slak.IO;

public sealed partial class SafeTensorsFile
{
    private const string MetadataKey = "__metadata__";

    private sealed record TensorSpec(string Name, SafeTensorsDType DType, int[] Shape, long ElementCount,
        long Begin, long End);

    private static (Dictionary<string, string> Metadata, List<TensorSpec> Specs) ParseHeader(
        string source, ReadOnlyMemory<byte> header, long dataLength)
    {
        // JsonDocument only checks UTF-8 lazily (when a string is read), so check the whole header first.
        if (!Utf8.IsValid(header.Span))
            throw Bad(source, "the header is not valid UTF-8 JSON: it contains invalid UTF-8 bytes");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (Exception e) when (e is JsonException or ArgumentException or InvalidOperationException)
        {
            throw Bad(source, $"the header is not valid UTF-8 JSON: {e.Message}");
        }
        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw Bad(source, $"the header must be a JSON object, got {root.ValueKind}");
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var specs = new List<TensorSpec>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (JsonProperty property in root.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw Bad(source, $"the header names '{property.Name}' twice");
                if (property.Name == MetadataKey)
                    ReadMetadata(source, property.Value, metadata);
                else
                    specs.Add(ReadSpec(source, property.Name, property.Value, dataLength));
            }
            CheckLayout(source, specs, dataLength);
            return (metadata, specs);
        }
    }

    private static void ReadMetadata(string source, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Bad(source, $"'{MetadataKey}' must be an object of strings, got {value.ValueKind}");
        foreach (JsonProperty item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
            {
                throw Bad(source, $"'{MetadataKey}' entry '{item.Name}' must be a string, got "
                    + item.Value.ValueKind);
            }
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
                throw Bad(source, $"'{MetadataKey}' names '{item.Name}' twice");
        }
    }

    private static TensorSpec ReadSpec(string source, string name, JsonElement value, long dataLength)
    {
        string where = $"tensor '{name}'";
        if (name.Length == 0) throw Bad(source, "a tensor has an empty name");
        if (value.ValueKind != JsonValueKind.Object)
            throw Bad(source, $"{where}: expected an object with dtype, shape, data_offsets, got {value.ValueKind}");

        if (!value.TryGetProperty("dtype", out JsonElement dtypeElement)
            || dtypeElement.ValueKind != JsonValueKind.String)
        {
            throw Bad(source, $"{where}: 'dtype' is missing or not a string");
        }
        string code = dtypeElement.GetString()!;
        if (!SafeTensorsDTypes.TryParse(code, out SafeTensorsDType dtype))
        {
            throw Bad(source, $"{where}: unknown dtype '{code}' (known: {SafeTensorsDTypes.KnownCodes})");
        }

        if (!value.TryGetProperty("shape", out JsonElement shapeElement)
            || shapeElement.ValueKind != JsonValueKind.Array)
        {
            throw Bad(source, $"{where}: 'shape' is missing or not an array");
        }
        var shape = new int[shapeElement.GetArrayLength()];
        long count = 1;
        int axis = 0;
        foreach (JsonElement dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long d) || d < 0 || d > int.MaxValue)
            {
                throw Bad(source,
                    $"{where}: shape[{axis}] = {dim.GetRawText()} is not an integer in [0, {int.MaxValue}]");
            }
            shape[axis++] = (int)d;
            try
            {
                count = checked(count * d);
            }
            catch (OverflowException)
            {
                throw Bad(source, $"{where}: shape [{string.Join(", ", shape)}...] has too many elements");
            }
        }

        if (!value.TryGetProperty("data_offsets", out JsonElement offsets)
            || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
        {
            throw Bad(source, $"{where}: 'data_offsets' must be an array [begin, end]");
        }
        long begin = ReadOffset(source, where, offsets[0], "begin");
        long end = ReadOffset(source, where, offsets[1], "end");
        if (end < begin) throw Bad(source, $"{where}: data_offsets [{begin}, {end}] end before they begin");
        if (end > dataLength)
        {
            throw Bad(source, $"{where}: data_offsets [{begin}, {end}] run past the data section of {dataLength} "
                + "bytes (file truncated?)");
        }
        long expected;
        try
        {
            expected = checked(count * dtype.ItemSize());
        }
        catch (OverflowException)
        {
            throw Bad(source, $"{where}: {count} elements of {code} overflow a 64-bit byte count");
        }
        if (end - begin != expected)
        {
            throw Bad(source, $"{where}: shape [{string.Join(", ", shape)}] of {code} needs {expected} bytes "
                + $"but data_offsets [{begin}, {end}] hold {end - begin}");
        }
        return new TensorSpec(name, dtype, shape, count, begin, end);
    }

    private static long ReadOffset(string source, string where, JsonElement element, string which)
    {
        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt64(out long v) || v < 0)
            throw Bad(source, $"{where}: data_offsets {which} = {element.GetRawText()} is not a non-negative integer");
        return v;
    }

    // The data section must be covered exactly: sorted by offset, each tensor starts where the previous one ended
    // (an overlap would alias two tensors, a gap means a corrupt or hand-edited file) and the last ends at the end.
    private static void CheckLayout(string source, List<TensorSpec> specs, long dataLength)
    {
        var sorted = specs.OrderBy(s => s.Begin).ThenBy(s => s.End).ToList();
        long position = 0;
        TensorSpec? previous = null;
        foreach (TensorSpec s in sorted)
        {
            if (s.Begin < position)
            {
                throw Bad(source, $"tensor '{s.Name}' data_offsets [{s.Begin}, {s.End}] overlap tensor "
                    + $"'{previous!.Name}' [{previous.Begin}, {previous.End}]");
            }
            if (s.Begin > position)
            {
                throw Bad(source, $"data bytes [{position}, {s.Begin}) belong to no tensor (gap before tensor "
                    + $"'{s.Name}')");
            }
            position = s.End;
            previous = s;
        }
        if (position != dataLength)
        {
            throw Bad(source, $"the data section has {dataLength} bytes but the tensors cover only [0, {position}) "
                + "(trailing bytes)");
        }
    }
}
