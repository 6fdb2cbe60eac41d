// One prepared batch on the host: normalised (possibly mixed) images, hard labels and soft targets.
namespace Slak.Data;

/// <summary>A host-side batch.</summary>
/// <param name="Index">Batch index within the epoch.</param>
/// <param name="Images">(N, C, H, W) values.</param>
/// <param name="Shape">The image tensor shape.</param>
/// <param name="Labels">Hard labels (N).</param>
/// <param name="Targets">Soft targets (N, K): smoothed one-hots, mixed when mixup/cutmix applied.</param>
/// <param name="ClassCount">K.</param>
public sealed record Batch(int Index, float[] Images, int[] Shape, int[] Labels, float[] Targets, int ClassCount)
{
    /// <summary>Number of images.</summary>
    public int Count => Labels.Length;
}
