// Compares a device output with the CPU backend's. Outputs are poisoned before the device run with a NaN of a
// payload no arithmetic produces (Poison), so an unwritten element is told apart from a NaN a kernel computed.
// Whole runs: every element must be written and within atol + rtol * |expected|. Sampled runs (--blocks sample):
// elements still holding the poison (or, for in-place updates, still bitwise equal to their value before the run)
// were not written by a sampled block and are skipped; the rest are compared, and at least one must exist.
namespace Slak.GpuCheck;

/// <summary>Result of comparing one output.</summary>
internal readonly record struct CompareResult(double MaxAbs, double MaxRel, long Compared, long Bad, long Unwritten,
                                              long FirstBad)
{
    /// <summary>True when nothing is wrong (for a sampled run: and something was compared).</summary>
    public bool Ok(bool sampled) => Bad == 0 && (sampled ? Compared > 0 : Unwritten == 0);
}

/// <summary>Output comparison with poison detection.</summary>
internal static class OutputCompare
{
    /// <summary>The bits of the poison: a quiet NaN with payload 0xC0FFEE (float.NaN is 0xFFC00000).</summary>
    public const int PoisonBits = 0x7FC0FFEE;

    /// <summary>The poison as a float.</summary>
    public static float Poison => BitConverter.Int32BitsToSingle(PoisonBits);

    /// <summary>Compares <paramref name="actual"/> with <paramref name="expected"/>. <paramref name="before"/> (empty
    /// = poisoned output) holds the output's values before an in-place run; <paramref name="include"/> (null = all)
    /// limits a sampled comparison to the elements the sampled blocks own.</summary>
    public static CompareResult Compare(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, ReadOnlySpan<float> before,
                                        bool sampled, double atol, double rtol, Func<long, bool>? include = null)
    {
        if (expected.Length != actual.Length || (before.Length != 0 && before.Length != actual.Length))
        {
            throw new ArgumentException($"output lengths differ: expected {expected.Length}, actual {actual.Length}, before {before.Length}");
        }

        double maxAbs = 0, maxRel = 0;
        long compared = 0, bad = 0, unwritten = 0, firstBad = -1;
        for (int i = 0; i < actual.Length; i++)
        {
            int bits = BitConverter.SingleToInt32Bits(actual[i]);
            bool untouched = before.Length == 0 ? bits == PoisonBits : bits == BitConverter.SingleToInt32Bits(before[i]);
            if (sampled)
            {
                if (untouched || (include is not null && !include(i)))
                {
                    continue;
                }
            }
            else if (untouched && before.Length == 0)
            {
                unwritten++;
                if (firstBad < 0) firstBad = i;
                continue;
            }

            compared++;
            double e = expected[i], a = actual[i], err = Math.Abs(a - e);
            if (double.IsNaN(a) || double.IsNaN(e) || err > atol + rtol * Math.Abs(e))
            {
                bad++;
                if (firstBad < 0) firstBad = i;
            }

            if (!double.IsNaN(err))
            {
                maxAbs = Math.Max(maxAbs, err);
                maxRel = Math.Max(maxRel, err / Math.Max(Math.Abs(e), 1e-3));
            }
        }

        return new CompareResult(maxAbs, maxRel, compared, bad, unwritten, firstBad);
    }
}
