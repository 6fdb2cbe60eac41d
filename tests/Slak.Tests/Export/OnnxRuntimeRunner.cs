// Runs an exported model in ONNX Runtime (in-process, CPU execution provider, one thread so the shared test machine
// is not flooded; basic graph optimisations only, since the extended ones take ~10 s on SLaK-T's 240 MB of
// initializers) and returns the logits.
using Microsoft.ML.OnnxRuntime;

namespace Slak.Tests.Export;

internal static class OnnxRuntimeRunner
{
    private static SessionOptions Options() => new()
    {
        IntraOpNumThreads = 1, InterOpNumThreads = 1,
        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_BASIC,
    };

    public static InferenceSession Open(byte[] model) => new(model, Options());

    public static InferenceSession Open(string path) => new(path, Options());

    public static (float[] Values, long[] Shape) Run(InferenceSession session, float[] input, int[] shape)
    {
        using var value = OrtValue.CreateTensorValueFromMemory(input, [.. shape.Select(d => (long)d)]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["input"], [value], ["logits"]);
        var info = outputs[0].GetTensorTypeAndShape();
        return (outputs[0].GetTensorDataAsSpan<float>().ToArray(), info.Shape);
    }
}
