// Which per-channel mean and standard deviation images are normalised with.
namespace Slak.Data;

/// <summary>Normalisation constants.</summary>
public enum DataNormalization
{
    /// <summary>Fashion-MNIST's grey mean 0.2860 and std 0.3530 (one channel).</summary>
    FashionMnist,

    /// <summary>ImageNet's RGB mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225): image folders.</summary>
    Imagenet,
}
