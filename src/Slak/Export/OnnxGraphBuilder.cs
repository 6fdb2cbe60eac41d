// Accumulates an ONNX graph: nodes in topological order (each appended after its inputs exist), float and int64
// initializers stored as little-endian raw_data, unique value names, and the typed graph inputs and outputs. The
// exporter (OnnxExporter) only decides which operators to emit; everything about the protobuf messages is here.
using System.Runtime.InteropServices;
using Google.Protobuf;
using Slak.Export.OnnxIr;

namespace Slak.Export;

/// <summary>Builds a <see cref="GraphProto"/> node by node.</summary>
internal sealed class OnnxGraphBuilder
{
    private readonly GraphProto _graph;
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _counters = new(StringComparer.Ordinal);

    public OnnxGraphBuilder(string name)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("ONNX raw_data is little-endian; this machine is big-endian");
        _graph = new GraphProto { Name = name };
    }

    /// <summary>The graph built so far.</summary>
    public GraphProto Graph => _graph;

    /// <summary>Number of nodes of each operator type (for tests and the export summary).</summary>
    public IReadOnlyDictionary<string, int> OpCounts =>
        _graph.Node.GroupBy(n => n.OpType).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);

    /// <summary>Declares a float32 graph input; each of <paramref name="dims"/> is a name (a dynamic dimension)
    /// or an int (a fixed size).</summary>
    public string AddInput(string name, params object[] dims)
    {
        Reserve(name);
        _graph.Input.Add(ValueInfo(name, dims));
        return name;
    }

    /// <summary>Declares a float32 graph output (the value <paramref name="name"/> must be produced by a
    /// node).</summary>
    public void AddOutput(string name, params object[] dims) => _graph.Output.Add(ValueInfo(name, dims));

    /// <summary>Adds a float32 initializer of shape <paramref name="dims"/>; returns its name.</summary>
    public string AddFloat(string name, ReadOnlySpan<float> values, params long[] dims)
    {
        long count = dims.Aggregate(1L, (a, d) => a * d);
        if (count != values.Length)
            throw new ArgumentException(
                $"initializer '{name}': shape [{string.Join(", ", dims)}] needs {count} values, got {values.Length}");
        Reserve(name);
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        t.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values));
        _graph.Initializer.Add(t);
        return name;
    }

    /// <summary>Adds a 0-d float32 initializer (a broadcast constant).</summary>
    public string AddScalar(string name, float value)
    {
        if (_names.Contains(name)) return name;
        return AddFloat(name, [value]);
    }

    /// <summary>Appends a node; its outputs get fresh names derived from <paramref name="hint"/> (or the given
    /// <paramref name="output"/> name). Returns the first output's name.</summary>
    public string Node(string opType, string hint, string[] inputs, string? output = null,
                       params AttributeProto[] attributes)
    {
        string name = Fresh(hint + "/" + opType);
        string outName = output ?? name + ":0";
        Reserve(outName);
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.AddRange(inputs);
        node.Output.Add(outName);
        node.Attribute.AddRange(attributes);
        _graph.Node.Add(node);
        return outName;
    }

    public static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Float(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    private string Fresh(string hint)
    {
        _counters.TryGetValue(hint, out int n);
        _counters[hint] = n + 1;
        return n == 0 ? hint : $"{hint}_{n}";
    }

    private void Reserve(string name)
    {
        if (!_names.Add(name)) throw new InvalidOperationException($"ONNX value name '{name}' is used twice");
    }

    private static ValueInfoProto ValueInfo(string name, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
        {
            shape.Dim.Add(d switch
            {
                string s => new TensorShapeProto.Types.Dimension { DimParam = s },
                int v => new TensorShapeProto.Types.Dimension { DimValue = v },
                long v => new TensorShapeProto.Types.Dimension { DimValue = v },
                _ => throw new ArgumentException($"dimension {d} of '{name}' is neither a name nor a size"),
            });
        }
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto
            {
                TensorType = new TypeProto.Types.Tensor
                {
                    ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape,
                },
            },
        };
    }
}
