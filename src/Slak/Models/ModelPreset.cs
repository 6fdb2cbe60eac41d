// A named architecture: its constructor arguments plus what the config cannot say (the input size it is meant for
// and the weight density it is meant to be trained at), so `slak train --preset x` and `slak summary` agree.
namespace Slak.Models;

/// <summary>A named model configuration with its intended input size and density.</summary>
/// <param name="Name">Preset name (e.g. slak_tiny).</param>
/// <param name="Config">Constructor arguments.</param>
/// <param name="InputSize">Square input side the preset is designed for (224 for ImageNet presets; 32 for the
/// nano presets: 28x28 Fashion-MNIST zero-padded by 2 on each side; 64 for slak_nano64: enlarged 2x, then
/// padded).</param>
/// <param name="Density">Intended fraction of live weights in the 2-D/4-D tensors (1 = dense training).</param>
/// <param name="Description">One line for listings.</param>
public sealed record ModelPreset(string Name, ModelConfig Config, int InputSize, double Density, string Description);
