// NUL-terminated UTF-8 copies of managed strings in unmanaged memory, freed together: NVRTC takes arrays of
// C strings (headers, include names, options) and must not see managed memory that the GC may move.
using System.Runtime.InteropServices;
using System.Text;

namespace Slak.Cuda.Compilation;

/// <summary>A scope owning unmanaged UTF-8 strings and pointer arrays.</summary>
internal sealed unsafe class Utf8Strings : IDisposable
{
    private readonly List<nint> _blocks = [];

    /// <summary>Copies <paramref name="text"/> as a NUL-terminated UTF-8 string.</summary>
    public byte* Add(string text)
    {
        int n = Encoding.UTF8.GetByteCount(text);
        var p = (byte*)NativeMemory.Alloc((nuint)n + 1);
        _blocks.Add((nint)p);
        Encoding.UTF8.GetBytes(text, new Span<byte>(p, n));
        p[n] = 0;
        return p;
    }

    /// <summary>Copies every string and returns an array of their pointers (null when empty).</summary>
    public byte** AddArray(IReadOnlyList<string> texts)
    {
        if (texts.Count == 0)
        {
            return null;
        }

        var array = (byte**)NativeMemory.Alloc((nuint)texts.Count, (nuint)sizeof(byte*));
        _blocks.Add((nint)array);
        for (int i = 0; i < texts.Count; i++)
        {
            array[i] = Add(texts[i]);
        }

        return array;
    }

    /// <summary>Frees every block.</summary>
    public void Dispose()
    {
        foreach (nint p in _blocks)
        {
            NativeMemory.Free((void*)p);
        }

        _blocks.Clear();
    }
}
