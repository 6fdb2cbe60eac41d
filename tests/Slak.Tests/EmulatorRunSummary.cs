// Prints, once every test has run, how many of the production kernels (those of cuda/kernels, embedded for
// NVRTC) were executed on the emulator (and which were not), so CI logs show the coverage of cuda/kernels by
// emulated tests; the test-only kernels of tests/kernels are left out of the count. It sits in the root namespace
// Slak.Tests so that its teardown runs after the tests of every namespace (Ops, Sparse, Train... launch kernels too),
// not only Cuda's.
using NUnit.Framework;
using Slak.Cuda.Compilation;
using Slak.Cuda.Emulation;

namespace Slak.Tests;

[SetUpFixture]
public sealed class EmulatorRunSummary
{
    [OneTimeTearDown]
    public void PrintExecutedKernels()
    {
        var production = KernelSources.Embedded.KernelToFile;
        var counts = EmulatedDevice.LaunchCounts.Where(c => production.ContainsKey(c.Key)).ToList();
        if (counts.Count == 0) return;  // no emulator test of a production kernel ran in this selection
        var registered = EmulatedDevice.RegisteredKernels.Where(production.ContainsKey).ToList();
        var never = registered.Where(k => !counts.Any(c => c.Key == k)).ToList();
        TestContext.Progress.WriteLine(
            $"cuda-emu: executed {counts.Count} of {registered.Count} kernels in {counts.Sum(c => c.Value)} launches" +
            (never.Count > 0 ? $"; never launched: {string.Join(", ", never)}" : "; every kernel was launched") +
            $" (default checks: {EmulatedDevice.DefaultChecks}, schedule seed {EmulatedDevice.DefaultScheduleSeed})");
    }
}
