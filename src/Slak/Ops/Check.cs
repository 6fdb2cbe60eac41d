// Argument validation shared by all operators, so every message names the operator, the argument and the values.
namespace Slak;

internal static class Check
{
    public static void NotNull(Tensor? t, string op, string arg)
    {
        if (t is null) throw new ArgumentNullException(arg, $"{op}: {arg} is null");
        if (t.IsDisposed) throw new ObjectDisposedException(arg, $"{op}: {arg} was disposed");
    }

    public static void Rank(Tensor t, int rank, string op, string arg, string layout)
    {
        NotNull(t, op, arg);
        if (t.Rank != rank)
            throw new ArgumentException($"{op}: {arg} must have rank {rank} {layout}, got shape {Shapes.Format(t.Shape)}", arg);
    }

    public static void SameDevice(string op, Tensor first, string firstArg, Tensor? other, string otherArg)
    {
        if (other is null) return;
        NotNull(other, op, otherArg);
        if (first.Device != other.Device)
            throw new ArgumentException($"{op}: {otherArg} is on {other.Device} but {firstArg} is on {first.Device}", otherArg);
    }

    public static void SameShape(string op, Tensor a, string aArg, Tensor b, string bArg)
    {
        NotNull(b, op, bArg);
        SameDevice(op, a, aArg, b, bArg);
        if (!Shapes.Equal(a.Shape, b.Shape))
            throw new ArgumentException($"{op}: {bArg} has shape {Shapes.Format(b.Shape)} but {aArg} has shape {Shapes.Format(a.Shape)}", bArg);
    }

    public static void Vector(string op, Tensor v, string arg, int length, Tensor like, string likeArg)
    {
        NotNull(v, op, arg);
        SameDevice(op, like, likeArg, v, arg);
        if (v.Rank != 1 || v.Size(0) != length)
            throw new ArgumentException($"{op}: {arg} must have shape ({length}), got {Shapes.Format(v.Shape)}", arg);
    }

    public static void Positive(float value, string op, string arg)
    {
        if (!(value > 0) || float.IsInfinity(value))
            throw new ArgumentOutOfRangeException(arg, value, $"{op}: {arg} must be a positive finite number");
    }
}
