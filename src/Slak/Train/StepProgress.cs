// Progress of one optimizer step, reported to the presentation layer (Spectre progress or plain log lines).
namespace Slak.Train;

/// <summary>Progress after one optimizer step.</summary>
/// <param name="Epoch">0-based epoch.</param>
/// <param name="Epochs">Total epochs.</param>
/// <param name="Step">Optimizer steps done.</param>
/// <param name="TotalSteps">Optimizer steps of the run.</param>
/// <param name="Loss">Loss of the step (mean over its micro-batches).</param>
/// <param name="Lr">Learning rate used.</param>
/// <param name="ImagesPerSecond">Throughput since the epoch began.</param>
/// <param name="Elapsed">Wall time since the run (or resume) began.</param>
/// <param name="Eta">Estimated time to the end of training (evaluation excluded).</param>
public sealed record StepProgress(int Epoch, int Epochs, long Step, long TotalSteps, double Loss, double Lr,
                                  double ImagesPerSecond, TimeSpan Elapsed, TimeSpan Eta);
