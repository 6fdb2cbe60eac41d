// Options of `slak export --onnx`.
namespace Slak.Export;

/// <summary>How a model is written as ONNX.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>The one operator-set version the exporter writes (LayerNormalization needs 17; GELU is built from
    /// Erf since opset 17 has no Gelu operator).</summary>
    public const int SupportedOpset = 17;

    /// <summary>ai.onnx operator-set version; only <see cref="SupportedOpset"/> is accepted.</summary>
    public int Opset { get; init; } = SupportedOpset;

    /// <summary>False (default): each large kernel is ONE depthwise Conv with the union kernel. True: one Conv per
    /// branch (K x N, N x K, N x N or K x K), summed.</summary>
    public bool KeepBranches { get; init; }

    /// <summary>Throws naming the value when the options cannot be exported.</summary>
    public OnnxExportOptions Validate()
    {
        if (Opset != SupportedOpset)
            throw new ArgumentException(
                $"ONNX opset {Opset} is not supported: the exporter writes opset {SupportedOpset} only " +
                "(LayerNormalization needs 17; other versions are not tested)");
        return this;
    }
}
