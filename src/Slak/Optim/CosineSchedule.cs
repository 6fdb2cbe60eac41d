// The per-step learning-rate schedule of the reference (utils.cosine_scheduler, slak-facts §3): a linear warmup
// from a start value to the base value over warmup steps (numpy linspace, endpoint included), then a cosine from
// the base value to the final value over the remaining steps. Computed in closed form instead of a table.
namespace Slak.Optim;

/// <summary>Linear warmup then cosine decay, indexed by optimizer step.</summary>
public sealed class CosineSchedule
{
    /// <summary>Creates the schedule.</summary>
    /// <param name="baseValue">Value at the end of the warmup.</param>
    /// <param name="finalValue">Value reached at the last step.</param>
    /// <param name="totalSteps">Number of optimizer steps of the whole run.</param>
    /// <param name="warmupSteps">Warmup length in steps (0: none).</param>
    /// <param name="startWarmupValue">Value at step 0 of the warmup.</param>
    public CosineSchedule(double baseValue, double finalValue, long totalSteps, long warmupSteps, double startWarmupValue = 0)
    {
        if (totalSteps < 1) throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, "total steps must be >= 1");
        if (warmupSteps < 0 || warmupSteps > totalSteps)
            throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, $"warmup steps must be in [0, {totalSteps}]");
        if (!double.IsFinite(baseValue) || !double.IsFinite(finalValue) || !double.IsFinite(startWarmupValue))
            throw new ArgumentException($"schedule values must be finite (base {baseValue}, final {finalValue}, start {startWarmupValue})", nameof(baseValue));
        BaseValue = baseValue; FinalValue = finalValue; TotalSteps = totalSteps; WarmupSteps = warmupSteps;
        StartWarmupValue = startWarmupValue;
    }

    /// <summary>The schedule of a run as the reference builds it (cosine_scheduler(lr, min_lr, epochs, steps per
    /// epoch, warmup_epochs, warmup_steps=...)): warmup_iters = <paramref name="warmupSteps"/> when given, else
    /// warmup epochs x steps per epoch rounded DOWN (the reference's warmup epochs are whole numbers; a fractional
    /// product such as 0.55 x 10 = 5.5 gives 5 steps).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The warmup is longer than the run, naming both.</exception>
    public static CosineSchedule ForRun(double lr, double minLr, int epochs, int stepsPerEpoch, double warmupEpochs, long? warmupSteps = null)
    {
        if (epochs < 1) throw new ArgumentOutOfRangeException(nameof(epochs), epochs, "epochs must be >= 1");
        if (stepsPerEpoch < 1) throw new ArgumentOutOfRangeException(nameof(stepsPerEpoch), stepsPerEpoch, "steps per epoch must be >= 1");
        if (!(warmupEpochs >= 0)) throw new ArgumentOutOfRangeException(nameof(warmupEpochs), warmupEpochs, "warmup epochs must be >= 0");
        long total = (long)epochs * stepsPerEpoch;
        long warmup = warmupSteps ?? (long)Math.Floor(warmupEpochs * stepsPerEpoch);
        if (warmup < 0 || warmup > total)
            throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmup,
                $"the warmup of {warmup} steps must be in [0, {total}], the run's {epochs} epochs x {stepsPerEpoch} steps");
        return new CosineSchedule(lr, minLr, total, warmup);
    }

    /// <summary>Value at the end of the warmup.</summary>
    public double BaseValue { get; }

    /// <summary>Value at the last step.</summary>
    public double FinalValue { get; }

    /// <summary>Total steps.</summary>
    public long TotalSteps { get; }

    /// <summary>Warmup steps.</summary>
    public long WarmupSteps { get; }

    /// <summary>Value at warmup step 0.</summary>
    public double StartWarmupValue { get; }

    /// <summary>The value at optimizer step <paramref name="step"/> (0-based; clamped to the last step).</summary>
    public double ValueAt(long step)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, "step must be >= 0");
        if (step >= TotalSteps) step = TotalSteps - 1;
        if (step < WarmupSteps)
        {
            // numpy.linspace(start, base, warmup): endpoint included, so the last warmup step equals the base value.
            if (WarmupSteps == 1) return StartWarmupValue;
            return StartWarmupValue + (BaseValue - StartWarmupValue) * step / (WarmupSteps - 1);
        }
        long i = step - WarmupSteps, n = TotalSteps - WarmupSteps;
        return FinalValue + 0.5 * (BaseValue - FinalValue) * (1 + Math.Cos(Math.PI * i / n));
    }
}
