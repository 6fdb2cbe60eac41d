// Arguments of `slak infer`, as the library sees them.
namespace Slak.Inference;

/// <summary>What to run: model config, weights, input and output .npy, device and batch size.</summary>
/// <param name="ConfigPath">config.json with the reference constructor arguments.</param>
/// <param name="WeightsPath">safetensors with the reference state_dict names.</param>
/// <param name="InputPath">.npy, float32 (or float64) (N, C, H, W), C order.</param>
/// <param name="OutputPath">.npy to write: float32 (N, num_classes) logits.</param>
/// <param name="Device">Device to run on.</param>
/// <param name="BatchSize">Images per forward pass.</param>
public sealed record InferenceOptions(string ConfigPath, string WeightsPath, string InputPath, string OutputPath,
                                      Device Device, int BatchSize = 32);
