// Name matching between a checkpoint's keys and a model's state_dict, independent of tensors: strips the
// `module.` (DDP) and `backbone.` (detection/segmentation) prefixes, maps the legacy branch names Decom1/Decom2 to
// LoRA1/LoRA2 (SLaK code of July 2022), ignores BatchNorm num_batches_tracked, and reports missing keys, unexpected
// keys and shape mismatches by name (slak-facts.md 7.1-7.3).
namespace Slak.IO;

/// <summary>Canonical SLaK state_dict key names and a matcher that reports every difference.</summary>
public static class StateDictKeys
{
    private static readonly string[] Prefixes = ["module.", "backbone."];

    /// <summary>The canonical name of a checkpoint key: without leading <c>module.</c>/<c>backbone.</c>
    /// prefixes, with <c>.Decom1.</c>/<c>.Decom2.</c> renamed to <c>.LoRA1.</c>/<c>.LoRA2.</c>.</summary>
    public static string Normalize(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        bool stripped = true;
        while (stripped)
        {
            stripped = false;
            foreach (string p in Prefixes)
            {
                if (key.StartsWith(p, StringComparison.Ordinal))
                {
                    key = key[p.Length..];
                    stripped = true;
                }
            }
        }
        return key.Replace(".Decom1.", ".LoRA1.", StringComparison.Ordinal)
            .Replace(".Decom2.", ".LoRA2.", StringComparison.Ordinal);
    }

    /// <summary>Whether a key carries no model state and may be absent or extra (BatchNorm
    /// <c>num_batches_tracked</c> counters).</summary>
    public static bool IsIgnorable(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return key.EndsWith(".num_batches_tracked", StringComparison.Ordinal) || key == "num_batches_tracked";
    }

    /// <summary>Matches checkpoint entries against the model's expected names and shapes.</summary>
    /// <param name="expected">Model state_dict names (canonical) with their shapes, in model order.</param>
    /// <param name="available">Checkpoint keys (any prefix or legacy name) with their shapes.</param>
    /// <returns>For each expected name, the checkpoint key to load it from, plus the problems found.</returns>
    public static StateDictMatch Match(IEnumerable<KeyValuePair<string, int[]>> expected,
        IEnumerable<KeyValuePair<string, int[]>> available)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(available);
        var byCanonical = new Dictionary<string, (string Key, int[] Shape)>(StringComparer.Ordinal);
        var duplicates = new List<string>();
        foreach (var (key, shape) in available)
        {
            string canonical = Normalize(key);
            if (!byCanonical.TryAdd(canonical, (key, shape)))
                duplicates.Add($"'{key}' and '{byCanonical[canonical].Key}' both mean '{canonical}'");
        }
        var sources = new List<KeyValuePair<string, string>>();
        var missing = new List<string>();
        var mismatched = new List<string>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, shape) in expected)
        {
            if (!byCanonical.TryGetValue(name, out var found))
            {
                if (!IsIgnorable(name)) missing.Add($"{name} {ShapeText(shape)}");
                continue;
            }
            used.Add(name);
            if (!found.Shape.AsSpan().SequenceEqual(shape))
            {
                mismatched.Add($"{name}: checkpoint '{found.Key}' has shape {ShapeText(found.Shape)}, the model "
                    + $"expects {ShapeText(shape)}");
                continue;
            }
            sources.Add(new(name, found.Key));
        }
        var unexpected = byCanonical.Where(kv => !used.Contains(kv.Key) && !IsIgnorable(kv.Key))
            .Select(kv => $"{kv.Value.Key} {ShapeText(kv.Value.Shape)}").ToList();
        return new StateDictMatch(sources, missing, unexpected, mismatched, duplicates);
    }

    /// <summary>Shape as "(a, b, c)"; "()" for a 0-d tensor.</summary>
    public static string ShapeText(IReadOnlyList<int> shape) => "(" + string.Join(", ", shape) + ")";
}
