// How a run ended.
namespace Slak.Train;

/// <summary>Outcome of <see cref="Trainer.Run"/>.</summary>
/// <param name="Completed">True when every epoch ran.</param>
/// <param name="Message">Why the run stopped early (null when completed).</param>
/// <param name="Metrics">Metrics of every epoch so far (resumed runs include earlier ones).</param>
/// <param name="BestTop1">Best validation top-1 so far (percent): what <c>best/</c> was selected on.</param>
public sealed record TrainResult(bool Completed, string? Message, IReadOnlyList<EpochMetrics> Metrics, double BestTop1)
{
    /// <summary>The last epoch's metrics (null when none).</summary>
    public EpochMetrics? Last => Metrics.Count == 0 ? null : Metrics[^1];
}
