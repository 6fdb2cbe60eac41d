// The result of StateDictKeys.Match: where each model tensor comes from, and every difference by name.
namespace Slak.IO;

/// <summary>Outcome of matching a checkpoint against a model's state_dict.</summary>
/// <param name="Sources">Model name -> checkpoint key, for each tensor that matched in name and shape.</param>
/// <param name="Missing">Model names (with shapes) the checkpoint lacks.</param>
/// <param name="Unexpected">Checkpoint keys (with shapes) the model has no use for.</param>
/// <param name="ShapeMismatches">One line per name present in both with different shapes (both shapes).</param>
/// <param name="Duplicates">Checkpoint keys that normalise to the same name.</param>
public sealed record StateDictMatch(
    IReadOnlyList<KeyValuePair<string, string>> Sources,
    IReadOnlyList<string> Missing,
    IReadOnlyList<string> Unexpected,
    IReadOnlyList<string> ShapeMismatches,
    IReadOnlyList<string> Duplicates)
{
    /// <summary>True when nothing is missing, unexpected, mismatched or duplicated.</summary>
    public bool IsExact => Missing.Count == 0 && Unexpected.Count == 0 && ShapeMismatches.Count == 0
        && Duplicates.Count == 0;

    /// <summary>A multi-line report of every problem (empty when <see cref="IsExact"/>), listing names in full so a
    /// user can see which architecture argument is wrong.</summary>
    public string Describe()
    {
        var lines = new List<string>();
        void Section(string title, IReadOnlyList<string> items)
        {
            if (items.Count == 0) return;
            lines.Add($"{title} ({items.Count}):");
            lines.AddRange(items.Select(i => "  " + i));
        }
        Section("missing keys", Missing);
        Section("unexpected keys", Unexpected);
        Section("shape mismatches", ShapeMismatches);
        Section("duplicate keys", Duplicates);
        return string.Join(Environment.NewLine, lines);
    }
}
