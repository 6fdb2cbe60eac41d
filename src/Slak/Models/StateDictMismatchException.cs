// Raised when a checkpoint does not fit a model: carries every missing key, every unexpected key and every shape
// mismatch at once (one message to fix the config or the converter, not one error per attempt; reference issues
// #5, #16, #19 were exactly such mismatches).
namespace Slak.Models;

/// <summary>A state dictionary that does not match the model.</summary>
public sealed class StateDictMismatchException : IOException
{
    /// <summary>Creates the exception with the full lists.</summary>
    public StateDictMismatchException(string source, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected,
                                      IReadOnlyList<string> shapeMismatches)
        : base(BuildMessage(source, missing, unexpected, shapeMismatches))
    {
        Missing = missing;
        Unexpected = unexpected;
        ShapeMismatches = shapeMismatches;
    }

    /// <summary>Model keys the checkpoint lacks.</summary>
    public IReadOnlyList<string> Missing { get; }

    /// <summary>Checkpoint keys the model lacks (after prefix stripping and legacy renaming).</summary>
    public IReadOnlyList<string> Unexpected { get; }

    /// <summary>"key: checkpoint (a, b) vs model (c, d)" lines.</summary>
    public IReadOnlyList<string> ShapeMismatches { get; }

    private static string BuildMessage(string source, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected,
                                       IReadOnlyList<string> shapes)
    {
        var lines = new List<string> { $"{source} does not match the model: {missing.Count} missing key(s), " +
            $"{unexpected.Count} unexpected key(s), {shapes.Count} shape mismatch(es)" };
        if (missing.Count > 0) lines.Add("missing: " + string.Join(", ", missing));
        if (unexpected.Count > 0) lines.Add("unexpected: " + string.Join(", ", unexpected));
        if (shapes.Count > 0) lines.Add("shape mismatch: " + string.Join("; ", shapes));
        static bool Has(IReadOnlyList<string> keys, string part) =>
            keys.Any(k => k.Contains(part, StringComparison.Ordinal));
        if (Has(missing, ".lkb_origin.") && Has(unexpected, ".LoRA"))
            lines.Add("hint: the checkpoint is decomposed (LoRA1/LoRA2): set \"Decom\": true in the model config");
        else if (Has(missing, ".LoRA") && Has(unexpected, ".lkb_origin."))
            lines.Add("hint: the checkpoint has dense lkb_origin kernels: set \"Decom\": false in the model config");
        if (shapes.Any(s => s.Contains("large_kernel", StringComparison.Ordinal)))
            lines.Add("hint: large-kernel shapes differ: check kernel_size (e.g. 31 29 27 13 5 vs 51 49 47 13 5) and " +
                "width_factor");
        return string.Join(Environment.NewLine, lines);
    }
}
