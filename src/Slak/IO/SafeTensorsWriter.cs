// Writer of the safetensors format. Tensors are laid out in the order they are added (the model's state_dict
// order), metadata keys sorted, header padded with spaces to a multiple of 8 bytes (as the reference library does,
// so the data start is aligned); the output is byte-for-byte deterministic and written atomically.
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Slak.IO;

/// <summary>Collects tensors and metadata, then writes one safetensors file. The data is copied when added, so
/// the caller may reuse its buffers.</summary>
public sealed class SafeTensorsWriter
{
    private readonly List<(string Name, SafeTensorsDType DType, int[] Shape, byte[] Data)> _tensors = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, string> _metadata = new(StringComparer.Ordinal);

    /// <summary>When true, <see cref="WriteTo"/> adds every tensor's checksum to the metadata
    /// (<see cref="TensorChecksums"/>), which every read then verifies. Off by default, so that files meant to match
    /// another writer's byte for byte stay plain.</summary>
    public bool Checksums { get; set; }

    /// <summary>Number of tensors added so far.</summary>
    public int Count => _tensors.Count;

    /// <summary>Sets a <c>__metadata__</c> entry (replacing an earlier value of the same key).</summary>
    public SafeTensorsWriter SetMetadata(string key, string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        _metadata[key] = value;
        return this;
    }

    /// <summary>Adds a float32 tensor.</summary>
    public SafeTensorsWriter AddFloat32(string name, ReadOnlySpan<float> data, ReadOnlySpan<int> shape)
    {
        Check(name, data.Length, shape, nameof(data));
        var bytes = new byte[data.Length * 4];
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.AsBytes(data).CopyTo(bytes);
        }
        else
        {
            for (int i = 0; i < data.Length; i++)
                BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), data[i]);
        }
        return Store(name, SafeTensorsDType.F32, shape, bytes);
    }

    /// <summary>Adds an int64 tensor (e.g. a BatchNorm <c>num_batches_tracked</c> with an empty shape).</summary>
    public SafeTensorsWriter AddInt64(string name, ReadOnlySpan<long> data, ReadOnlySpan<int> shape)
    {
        Check(name, data.Length, shape, nameof(data));
        var bytes = new byte[data.Length * 8];
        for (int i = 0; i < data.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(8 * i), data[i]);
        return Store(name, SafeTensorsDType.I64, shape, bytes);
    }

    /// <summary>Adds a uint8 tensor (e.g. a sparse mask).</summary>
    public SafeTensorsWriter AddUInt8(string name, ReadOnlySpan<byte> data, ReadOnlySpan<int> shape)
    {
        Check(name, data.Length, shape, nameof(data));
        return Store(name, SafeTensorsDType.U8, shape, data.ToArray());
    }

    /// <summary>Adds a tensor of any dtype from its raw little-endian bytes.</summary>
    public SafeTensorsWriter AddRaw(string name, SafeTensorsDType dtype, ReadOnlySpan<byte> data,
        ReadOnlySpan<int> shape)
    {
        int itemSize = dtype.ItemSize();
        if (data.Length % itemSize != 0)
        {
            throw new ArgumentException(
                $"tensor '{name}': {data.Length} bytes is not a multiple of the {dtype.Code()} item size {itemSize}",
                nameof(data));
        }
        Check(name, data.Length / itemSize, shape, nameof(data));
        return Store(name, dtype, shape, data.ToArray());
    }

    /// <summary>Writes the file atomically (temp file + rename).</summary>
    public void Write(string path) => AtomicFile.Write(path, WriteTo);

    /// <summary>The file content as bytes.</summary>
    public byte[] ToBytes()
    {
        using var memory = new MemoryStream();
        WriteTo(memory);
        return memory.ToArray();
    }

    /// <summary>Writes the file content to <paramref name="stream"/>.</summary>
    public void WriteTo(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        byte[] header = BuildHeader();
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
        stream.Write(prefix);
        stream.Write(header);
        foreach (var t in _tensors) stream.Write(t.Data);
    }

    private byte[] BuildHeader()
    {
        using var memory = new MemoryStream();
        // Relaxed escaping keeps names and metadata readable (no \u002B for '+'); the output is still valid JSON.
        using (var json = new Utf8JsonWriter(memory, new JsonWriterOptions
        {
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        }))
        {
            json.WriteStartObject();
            var metadata = _metadata;
            if (Checksums)
            {
                metadata = new SortedDictionary<string, string>(_metadata, StringComparer.Ordinal)
                {
                    [TensorChecksums.MetadataKey] = TensorChecksums.Encode(_tensors.Select(t => (t.Name, t.Data)), _metadata),
                };
            }
            if (metadata.Count > 0)
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata) json.WriteString(key, value);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in _tensors)
            {
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", t.DType.Code());
                json.WriteStartArray("shape");
                foreach (int d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + t.Data.LongLength);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += t.Data.LongLength;
            }
            json.WriteEndObject();
        }
        int padding = (int)((8 - memory.Length % 8) % 8);
        for (int i = 0; i < padding; i++) memory.WriteByte((byte)' ');
        return memory.ToArray();
    }

    private void Check(string name, int count, ReadOnlySpan<int> shape, string dataName)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name == "__metadata__")
            throw new ArgumentException("'__metadata__' is reserved and cannot name a tensor", nameof(name));
        if (_names.Contains(name)) throw new ArgumentException($"tensor '{name}' was already added", nameof(name));
        long product = 1;
        foreach (int d in shape)
        {
            if (d < 0)
            {
                throw new ArgumentException(
                    $"tensor '{name}': shape [{string.Join(", ", shape.ToArray())}] has a negative dimension",
                    nameof(shape));
            }
            // Saturate instead of overflowing: past int.MaxValue the count can never match anyway.
            product = product > int.MaxValue ? product : product * d;
        }
        if (shape.Contains(0)) product = 0;
        if (product != count)
        {
            throw new ArgumentException(
                $"tensor '{name}': shape [{string.Join(", ", shape.ToArray())}] has {product} elements but the data "
                + $"has {count}", dataName);
        }
    }

    private SafeTensorsWriter Store(string name, SafeTensorsDType dtype, ReadOnlySpan<int> shape, byte[] data)
    {
        _names.Add(name);
        _tensors.Add((name, dtype, shape.ToArray(), data));
        return this;
    }
}
