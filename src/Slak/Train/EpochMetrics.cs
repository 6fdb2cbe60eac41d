// One line of metrics.jsonl: what an epoch did and what the model scored afterwards.
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Slak.Train;

/// <summary>Metrics of one epoch.</summary>
public sealed record EpochMetrics
{
    /// <summary>Epoch number (1-based: epochs completed).</summary>
    public int Epoch { get; init; }

    /// <summary>Optimizer steps done.</summary>
    public long Step { get; init; }

    /// <summary>Mean training loss over the epoch.</summary>
    public double TrainLoss { get; init; }

    /// <summary>Validation top-1 accuracy (percent): what <c>best/</c> is selected on.</summary>
    public double ValTop1 { get; init; }

    /// <summary>Validation top-5 accuracy (percent).</summary>
    public double ValTop5 { get; init; }

    /// <summary>Validation cross-entropy.</summary>
    public double ValLoss { get; init; }

    /// <summary>Test top-1 accuracy (percent); null when the test set was not evaluated after this epoch (it is
    /// evaluated after the last epoch, and after every epoch with
    /// <see cref="TrainOptions.EvalTestEveryEpoch"/>).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? TestTop1 { get; init; }

    /// <summary>Test top-5 accuracy (percent; null when not evaluated).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? TestTop5 { get; init; }

    /// <summary>Test cross-entropy (null when not evaluated).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? TestLoss { get; init; }

    /// <summary>EMA weights' validation top-1 (null when EMA is off).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? EmaTop1 { get; init; }

    /// <summary>EMA weights' validation top-5.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? EmaTop5 { get; init; }

    /// <summary>EMA weights' validation loss.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? EmaLoss { get; init; }

    /// <summary>Learning rate of the epoch's last step.</summary>
    public double Lr { get; init; }

    /// <summary>Live fraction of the sparsifiable weights (1 when dense).</summary>
    public double Density { get; init; }

    /// <summary>Wall time since the run (or resume) began, seconds.</summary>
    public double WallTime { get; init; }

    /// <summary>Training throughput of this epoch.</summary>
    public double ImagesPerSecond { get; init; }

    // Non-finite values (a diverged epoch's loss) are written as "NaN"/"Infinity" strings rather than failing.
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>One JSON line.</summary>
    public string ToJsonLine() => JsonSerializer.Serialize(this, Json);

    /// <summary>Parses one JSON line.</summary>
    public static EpochMetrics FromJsonLine(string line) =>
        JsonSerializer.Deserialize<EpochMetrics>(line, Json) ?? throw new InvalidDataException($"metrics line is null: '{line}'");
}
