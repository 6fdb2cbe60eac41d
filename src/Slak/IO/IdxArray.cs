// An array read from an IDX file (the MNIST / Fashion-MNIST container): dimensions and unsigned-byte elements.
namespace Slak.IO;

/// <summary>An unsigned-byte IDX array (type code 0x08), row-major.</summary>
public sealed class IdxArray
{
    private readonly int[] _dims;

    internal IdxArray(int magic, int[] dims, byte[] data)
    {
        Magic = magic;
        _dims = dims;
        Data = data;
    }

    /// <summary>The 32-bit big-endian magic: 0x00000800 | number of dimensions (0x803 images, 0x801 labels).
    /// </summary>
    public int Magic { get; }

    /// <summary>Dimensions, outermost first (images: n, rows, cols; labels: n).</summary>
    public IReadOnlyList<int> Dims => _dims;

    /// <summary>The elements, row-major.</summary>
    public byte[] Data { get; }
}
