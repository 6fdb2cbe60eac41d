// Resolving --precision (train, eval, infer): fp32, tf32 or bf16; when not given, the device's default (tf32 on a
// CUDA GPU, fp32 on the CPU and on cuda-emu). The trajectory mode (an .npz of training data, compared step by step
// with PyTorch) always runs fp32: another precision given there is refused.
using System.CommandLine;
using Slak.Train;

namespace Slak.Cli.Training;

/// <summary>The --precision option of the CLI verbs.</summary>
internal static class PrecisionChoice
{
    /// <summary>The --precision option (no default value: absent means the device's default).</summary>
    public static Option<string?> CreateOption() => new("--precision")
    {
        Description = $"arithmetic: {string.Join(", ", PrecisionNames.All)} (default: tf32 on cuda, fp32 on cpu and cuda-emu; "
            + "weights and checkpoints stay fp32)",
    };

    /// <summary>The precision named by the option's value (null or absent: null).</summary>
    public static Precision? Parse(string? value) => value is null ? null : PrecisionNames.Parse(value);

    /// <summary>The precision to run with on <paramref name="device"/>: the given one, else the device's
    /// default.</summary>
    public static Precision Resolve(string? value, Device device) => Parse(value) ?? PrecisionNames.DefaultFor(device);

    /// <summary>The options with their precision resolved for <paramref name="device"/> (recorded in options.json),
    /// fp32 in the trajectory mode; says which precision the run uses through <paramref name="log"/>.</summary>
    public static TrainOptions ForTraining(TrainOptions options, Device device, bool trajectory, Action<string> log)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        if (trajectory && options.Precision is { } p && p != Precision.Fp32)
            throw new ArgumentException($"--precision {PrecisionNames.Name(p)}: the trajectory mode (--data .npz) always runs fp32, "
                + "to be comparable step by step with PyTorch", "--precision");
        var resolved = trajectory ? Precision.Fp32 : options.Precision ?? PrecisionNames.DefaultFor(device);
        log($"precision: {PrecisionNames.Name(resolved)}{(options.Precision is null ? $" (the default on {device})" : "")}");
        return options with { Precision = resolved };
    }
}
