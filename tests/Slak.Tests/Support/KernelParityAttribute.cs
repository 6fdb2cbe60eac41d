// Marks a test as the parity test of CUDA kernels: it runs them on the emulator and compares their results with the
// CPU backend or a float64 reference. GpuCheckCoverageTests requires one for every kernel of cuda/kernels; this
// attribute keeps the claim honest: on cuda-emu (a fixture whose device argument is "cuda-emu", or an emulator-only
// fixture without a device argument) the test fails when a kernel it names did not launch. A parameterized test is
// checked over all of its cases together, when its last case has run.
using NUnit.Framework;
using NUnit.Framework.Interfaces;
using Slak.Cuda.Emulation;

namespace Slak.Tests.Support;

/// <summary>The test checks these kernels against the CPU backend or a reference (on cuda-emu they must
/// launch).</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class KernelParityAttribute(params string[] kernels) : Attribute, ITestAction
{
    private readonly Dictionary<string, HashSet<string>> _launched = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _casesRun = new(StringComparer.Ordinal);
    private Dictionary<string, long>? _before;

    /// <summary>The kernels (extern "C" names) the test covers.</summary>
    public IReadOnlyList<string> Kernels { get; } = kernels;

    /// <inheritdoc />
    public ActionTargets Targets => ActionTargets.Test;

    /// <inheritdoc />
    public void BeforeTest(ITest test) =>
        _before = RunsOnEmulator(test) ? new Dictionary<string, long>(EmulatedDevice.LaunchCounts, StringComparer.Ordinal) : null;

    /// <inheritdoc />
    public void AfterTest(ITest test)
    {
        if (_before is null) return;
        var before = _before;
        _before = null;
        // One entry per test, or per parameterized method of a fixture instance (its cases share the parent suite).
        bool parameterized = test.Parent is { IsSuite: true, Method: not null };
        string key = parameterized ? test.Parent!.FullName : test.FullName;
        if (!_launched.TryGetValue(key, out var launched)) _launched[key] = launched = new HashSet<string>(StringComparer.Ordinal);
        launched.UnionWith(EmulatedDevice.LaunchCounts.Where(c => c.Value > before.GetValueOrDefault(c.Key)).Select(c => c.Key));
        _casesRun[key] = _casesRun.GetValueOrDefault(key) + 1;
        if (parameterized && _casesRun[key] < test.Parent!.Tests.Count) return;
        var outcome = TestContext.CurrentContext.Result.Outcome.Status;
        if (outcome is TestStatus.Failed or TestStatus.Skipped) return;  // failed already, or ignored
        var missing = Kernels.Where(k => !launched.Contains(k)).ToList();
        if (missing.Count > 0)
            Assert.Fail($"{key} is the parity test of {string.Join(", ", missing)}, which did not launch on cuda-emu");
    }

    private static bool RunsOnEmulator(ITest test)
    {
        for (var t = test.Parent; t is not null; t = t.Parent)
            if (t.IsSuite && t.Method is null && t.TypeInfo is not null)  // the fixture
                return t.Arguments.Length == 0 || t.Arguments[0] is not string device || device == "cuda-emu";
        return false;
    }
}
