// The command-line names of the precisions (fp32, tf32, bf16), their parsing with an error naming the bad value, and
// the default of a device: tf32 on a CUDA GPU (cuBLAS TF32 math), fp32 on the CPU and on cuda-emu (the emulator
// defaults to the exact path its parity tests compare; --precision tf32 or bf16 exercises the others there).
using System.Globalization;

namespace Slak;

/// <summary>Names and defaults of <see cref="Precision"/>.</summary>
public static class PrecisionNames
{
    /// <summary>The accepted names, in order: fp32, tf32, bf16.</summary>
    public static IReadOnlyList<string> All { get; } = ["fp32", "tf32", "bf16"];

    /// <summary>The command-line name of <paramref name="precision"/> (fp32, tf32, bf16).</summary>
    public static string Name(Precision precision) => precision switch
    {
        Precision.Fp32 => "fp32",
        Precision.Tf32 => "tf32",
        Precision.Bf16 => "bf16",
        _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, "unknown precision"),
    };

    /// <summary>Parses fp32, tf32 or bf16 (case-insensitive); anything else throws naming the value and the
    /// choices.</summary>
    public static Precision Parse(string text, string optionName = "--precision")
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = text.Trim().ToLowerInvariant();
        for (int i = 0; i < All.Count; i++)
            if (t == All[i]) return (Precision)i;
        throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
            $"{optionName}: '{text}' is not a precision; expected one of {string.Join(", ", All)}"), optionName);
    }

    /// <summary>The default precision on <paramref name="device"/>: tf32 on a CUDA GPU, fp32 elsewhere.</summary>
    public static Precision DefaultFor(Device device) => device.Type == DeviceType.Cuda ? Precision.Tf32 : Precision.Fp32;
}
