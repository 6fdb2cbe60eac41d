// Which ITensorCollective a data-parallel job uses, decided by all ranks together over MPI: each rank says whether it
// can reduce on its device (it trains on a cuda device and NCCL loads there; or, in tests, it is on cuda-emu with the
// NCCL stand-in requested), the answers are summed over the ranks, and only when every rank can does the job use
// device buffers; otherwise every rank uses MPI on host buffers. All ranks reach the same decision from the same sums,
// so no rank waits in a collective the others never call.
using System.Globalization;

namespace Slak.Distributed;

/// <summary>The decision between device (NCCL) and host (MPI) reductions.</summary>
internal static class CollectiveChoice
{
    /// <summary>What one rank can do.</summary>
    internal enum Capability
    {
        /// <summary>On cuda with NCCL loaded (or cuda-emu with the stand-in): device buffers.</summary>
        Device = 0,
        /// <summary>Not on a cuda device.</summary>
        NotCuda = 1,
        /// <summary>On cuda, but NCCL does not load.</summary>
        NoNccl = 2,
    }

    /// <summary>This rank's capability on <paramref name="device"/>: <paramref name="ncclLoads"/> probes NCCL (only
    /// asked on cuda); <paramref name="fakeNccl"/> makes cuda-emu ranks use the stand-in.</summary>
    public static Capability Local(Device device, Func<bool> ncclLoads, bool fakeNccl)
    {
        ArgumentNullException.ThrowIfNull(ncclLoads);
        if (device.Type == DeviceType.CudaEmu) return fakeNccl ? Capability.Device : Capability.NotCuda;
        if (device.Type != DeviceType.Cuda) return Capability.NotCuda;
        return ncclLoads() ? Capability.Device : Capability.NoNccl;
    }

    /// <summary>Every rank's capability (index = rank), agreed over <paramref name="collectives"/>.</summary>
    public static Capability[] Gather(ICollectives collectives, Capability mine)
    {
        ArgumentNullException.ThrowIfNull(collectives);
        var codes = new double[collectives.Size];
        codes[collectives.Rank] = (int)mine;
        collectives.Sum(codes, "choosing the collective (NCCL or MPI)");
        return codes.Select(c => (Capability)(int)c).ToArray();
    }

    /// <summary>True when every rank can reduce on its device; <paramref name="why"/> says why not (naming
    /// ranks).</summary>
    public static bool UseDevice(IReadOnlyList<Capability> ranks, out string why)
    {
        ArgumentNullException.ThrowIfNull(ranks);
        var notCuda = Ranks(ranks, Capability.NotCuda);
        var noNccl = Ranks(ranks, Capability.NoNccl);
        var reasons = new List<string>();
        if (notCuda.Length > 0) reasons.Add($"{RankList(notCuda)} {(notCuda.Length == 1 ? "is" : "are")} not on a cuda device");
        if (noNccl.Length > 0) reasons.Add($"NCCL does not load on {RankList(noNccl)} (slak info shows the probes)");
        why = string.Join("; ", reasons);
        return reasons.Count == 0;
    }

    private static int[] Ranks(IReadOnlyList<Capability> ranks, Capability which) =>
        Enumerable.Range(0, ranks.Count).Where(r => ranks[r] == which).ToArray();

    private static string RankList(int[] ranks) =>
        $"rank{(ranks.Length == 1 ? "" : "s")} {string.Join(", ", ranks.Select(r => r.ToString(CultureInfo.InvariantCulture)))}";
}
