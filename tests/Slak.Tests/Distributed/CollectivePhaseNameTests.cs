// The names DataParallel gives its collectives: a collective that times out reports "no answer from the other ranks for
// N s in <name>" (MpiCollectives), so each name reads after "in" and says what was being exchanged. The same-on-every-
// rank check runs at start-up and after every prune/regrow round: it was named "start-up check of masks after the
// prune/regrow round of step 14", which reads wrong after a round and broke the hung-rank test's "in the " whenever
// the hang was noticed there (DataParallelMpiTests.AHungRank_StopsEveryRankWithinTheTimeout_WithTheWatchdogsError).
using NUnit.Framework;
using Slak.Distributed;

namespace Slak.Tests.Distributed;

public class CollectivePhaseNameTests
{
    [TestCase("weights at start-up")]
    [TestCase("masks after the prune/regrow round of step 14")]
    public void TheSameOnEveryRankCheckNamesWhatItCompares(string what)
    {
        var fake = new FakeCollectives(0, 2);
        new DataParallel(fake, syncBatchNorm: false).CheckSame(what, "0123456789abcdef", "a hint");
        Assert.That(fake.Calls, Has.Count.EqualTo(3), "two broadcasts (length, text) and one sum");
        Assert.That(fake.Calls, Has.All.EqualTo($"the check that every rank holds the same {what}"));
    }

    [Test]
    public void ADifferenceOnAnotherRankIsReportedOnEveryRankNamingIt()
    {
        // Rank 1 reports a difference through the sum; this rank (0) holds rank 0's text, so it names rank 1 only.
        var fake = new FakeCollectives(0, 2) { Others = (values, _) => [0, 1] };
        var e = Assert.Throws<RanksDifferException>(() =>
            new DataParallel(fake, syncBatchNorm: false).CheckSame("masks after the prune/regrow round of step 14",
                "0123456789abcdef", "a hint"));
        Assert.That(e!.Message, Does.Contain("masks after the prune/regrow round of step 14 of rank 1 differ from rank 0's"));
        Assert.That(e.Message, Does.EndWith("a hint"));
    }
}
