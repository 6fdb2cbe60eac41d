// Output comparison of the GPU check: poison detection, whole versus sampled runs, in-place updates, owner filters;
// the row format (status word last) and the options.
using NUnit.Framework;
using Slak.GpuCheck;

namespace Slak.Tests.GpuCheck;

[TestFixture]
public class GpuCheckCompareTests
{
    private static readonly float P = OutputCompare.Poison;

    [Test]
    public void PoisonIsANaNThatArithmeticDoesNotProduce()
    {
        Assert.That(float.IsNaN(P), Is.True);
        Assert.That(BitConverter.SingleToInt32Bits(float.NaN), Is.Not.EqualTo(OutputCompare.PoisonBits));
        Assert.That(BitConverter.SingleToInt32Bits(0f / 0f), Is.Not.EqualTo(OutputCompare.PoisonBits));
    }

    [Test]
    public void WholeRunFailsOnAnUnwrittenElement()
    {
        float[] expected = [1, 2, 3, 4];
        var r = OutputCompare.Compare(expected, [1, 2, P, 4], [], sampled: false, 1e-6, 0);
        Assert.That((r.Unwritten, r.FirstBad, r.Ok(false)), Is.EqualTo((1L, 2L, false)));
        Assert.That(OutputCompare.Compare(expected, [1, 2, 3, 4], [], false, 1e-6, 0).Ok(false), Is.True);
    }

    [Test]
    public void ComputedNaNIsAMismatchNotAnUnwrittenElement()
    {
        var r = OutputCompare.Compare([1, 2], [1, float.NaN], [], sampled: true, 1e-6, 0);
        Assert.That((r.Bad, r.Compared, r.Ok(true)), Is.EqualTo((1L, 2L, false)));
    }

    [Test]
    public void SampledRunComparesOnlyWrittenElementsAndNeedsOne()
    {
        float[] expected = [1, 2, 3, 4];
        var r = OutputCompare.Compare(expected, [P, 2, P, 4], [], sampled: true, 1e-6, 0);
        Assert.That((r.Compared, r.Bad, r.Ok(true)), Is.EqualTo((2L, 0L, true)));
        var wrong = OutputCompare.Compare(expected, [P, 2.5f, P, 4], [], sampled: true, 1e-6, 0);
        Assert.That((wrong.Bad, wrong.FirstBad, wrong.Ok(true)), Is.EqualTo((1L, 1L, false)));
        var none = OutputCompare.Compare(expected, [P, P, P, P], [], sampled: true, 1e-6, 0);
        Assert.That(none.Ok(true), Is.False, "a sample that wrote nothing proves nothing");
    }

    [Test]
    public void InPlaceSampledRunComparesElementsThatChanged()
    {
        float[] before = [10, 20, 30];
        float[] expected = [11, 21, 31];
        var r = OutputCompare.Compare(expected, [11, 20, 31], before, sampled: true, 1e-6, 0);
        Assert.That((r.Compared, r.Ok(true)), Is.EqualTo((2L, true)));
        var whole = OutputCompare.Compare(expected, [11, 20, 31], before, sampled: false, 1e-6, 0);
        Assert.That((whole.Bad, whole.Ok(false)), Is.EqualTo((1L, false)), "a whole in-place run must update every element");
    }

    [Test]
    public void OwnerFilterLimitsASampledComparison()
    {
        // Elements 2 and 3 hold garbage (a reduction read unsampled partials): not owned, not compared.
        var r = OutputCompare.Compare([1, 2, 3, 4], [1, 2, 99, -7], [], sampled: true, 1e-6, 0, include: i => i < 2);
        Assert.That((r.Compared, r.Ok(true)), Is.EqualTo((2L, true)));
    }

    [Test]
    public void ToleranceIsAbsolutePlusRelative()
    {
        Assert.That(OutputCompare.Compare([100], [100.05f], [], false, 1e-3, 1e-3).Ok(false), Is.True);
        Assert.That(OutputCompare.Compare([100], [100.2f], [], false, 1e-3, 1e-3).Ok(false), Is.False);
    }

    [Test]
    public void RowEndsWithItsStatusWordAndEscapesPipes()
    {
        var row = RowResult.Failed("dwconv_fused_kernel", "op", "grid (1,1,70000) | invalid\nsecond line");
        string md = row.ToMarkdown(66.9);
        Assert.That(md, Does.EndWith("| FAIL |"));
        Assert.That(md, Does.Not.Contain("\n"));
        Assert.That(md, Does.Contain("\\| invalid"));
        Assert.That(ProcessDriver.StatusOf(md), Is.EqualTo(RowStatus.Fail));
        Assert.That(ProcessDriver.StatusOf(RowResult.Skipped("k", "op", "why").ToMarkdown(1)), Is.EqualTo(RowStatus.Skip));
        Assert.That(ProcessDriver.StatusOf(new RowResult("k", "op", RowStatus.Ok).ToMarkdown(1)), Is.EqualTo(RowStatus.Ok));
        Assert.That(RowResult.Header.Split('\n')[0], Does.EndWith("| status |"));
    }

    [Test]
    public void OptionsParseAndChildrenGetTheirRange()
    {
        var o = CheckOptions.Parse(["--device", "cuda-emu", "--scale", "tiny", "--blocks", "sample", "--out", "x.md", "--seed", "0xbeef"]);
        Assert.That((o.Device, o.Full, o.Sample, o.Seed), Is.EqualTo(("cuda-emu", false, true, 0xBEEFUL)));
        var child = o.ChildArguments(3, 7);
        Assert.That(child, Does.Not.Contain("--out"), "children report rows on stdout; only the driver writes the file");
        Assert.That(string.Join(" ", child), Does.EndWith("--child --from 3 --to 7"));
        Assert.That(() => CheckOptions.Parse(["--scale", "huge"]), Throws.ArgumentException.With.Message.Contains("huge"));
        Assert.That(() => CheckOptions.Parse(["--frobnicate"]), Throws.ArgumentException.With.Message.Contains("--frobnicate"));
        Assert.That(() => CaseCatalog.Select(CheckOptions.Parse(["--only", "no_such_kernel"])),
            Throws.ArgumentException.With.Message.Contains("no_such_kernel"));
    }
}
