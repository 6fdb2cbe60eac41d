// One weight-carrying layer of a model as the summary counts it: where it sits, what it outputs, its parameters and
// its multiply-accumulates at a given input size.
namespace Slak.Models;

/// <summary>Cost of one layer.</summary>
/// <param name="Part">Row of the summary it belongs to ("stem", "downsample 1", "stage 1", "head").</param>
/// <param name="Module">Dotted module path (e.g. stages.0.0.pwconv1).</param>
/// <param name="WeightKey">state_dict key of the weight whose density scales this layer's MACs, or null.</param>
/// <param name="WeightElements">Elements of that weight (0 when none).</param>
/// <param name="OtherParams">Trainable elements besides the weight (biases, norm scales, gamma).</param>
/// <param name="Macs">Dense multiply-accumulates for one image.</param>
public readonly record struct LayerCost(string Part, string Module, string? WeightKey, long WeightElements,
                                        long OtherParams, long Macs);
