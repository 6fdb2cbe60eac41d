// Prints, once every test has run, how many of the emulator's kernels were executed (and which were not), so CI
// logs show the coverage of cuda/kernels by emulated tests. It sits in the root namespace Slak.Tests so that its
// teardown runs after the tests of every namespace (Ops, Sparse, Train... launch kernels too), not only Cuda's.
using NUnit.Framework;
using Slak.Cuda.Emulation;

namespace Slak.Tests;

[SetUpFixture]
public sealed class EmulatorRunSummary
{
    [OneTimeTearDown]
    public void PrintExecutedKernels()
    {
        var counts = EmulatedDevice.LaunchCounts;
        if (counts.Count == 0) return;  // no emulator test ran in this selection
        var registered = EmulatedDevice.RegisteredKernels;
        var never = registered.Where(k => !counts.ContainsKey(k)).ToList();
        TestContext.Progress.WriteLine(
            $"cuda-emu: executed {counts.Count} of {registered.Count} kernels in {counts.Values.Sum()} launches" +
            (never.Count > 0 ? $"; never launched: {string.Join(", ", never)}" : "; every kernel was launched"));
    }
}
