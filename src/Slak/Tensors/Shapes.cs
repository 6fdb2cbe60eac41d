// Shape arithmetic and validation helpers shared by every operator, so error messages look the same everywhere.
namespace Slak;

/// <summary>Shape helpers.</summary>
public static class Shapes
{
    /// <summary>Product of the dimensions (1 for a scalar); throws on negative sizes.</summary>
    public static long Numel(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape {Format(shape)}", nameof(shape));
            n = checked(n * d);
        }
        return n;
    }

    /// <summary>"(2, 3, 4)".</summary>
    public static string Format(ReadOnlySpan<int> shape)
    {
        if (shape.Length == 0) return "()";
        var parts = new string[shape.Length];
        for (int i = 0; i < shape.Length; i++) parts[i] = shape[i].ToString(System.Globalization.CultureInfo.InvariantCulture);
        return "(" + string.Join(", ", parts) + ")";
    }

    /// <summary>Maps a possibly negative dimension index into [0, rank).</summary>
    public static int NormalizeDim(int dim, int rank, string argName)
    {
        int d = dim < 0 ? dim + rank : dim;
        if (d < 0 || d >= rank)
            throw new ArgumentOutOfRangeException(argName, dim, $"dimension {dim} is out of range for rank {rank}");
        return d;
    }

    /// <summary>True when both shapes are equal.</summary>
    public static bool Equal(ReadOnlySpan<int> a, ReadOnlySpan<int> b) => a.SequenceEqual(b);
}
