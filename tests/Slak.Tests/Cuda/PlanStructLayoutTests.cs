// The C# mirrors of the structs of cuda/include/slak (slak_params.h, slak_limits.h, slak_plan.h), field by field
// against the layout table the header itself produces (offsetof / sizeof, exported by libslak_emu.so), and the
// per-architecture device-limit tables against the CUDA documentation's figures.
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using NUnit.Framework;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class PlanStructLayoutTests
{
    // C struct -> C# mirror (SparseSelectState has none: its size is SparseKernels.StateBytes, checked below).
    private static readonly Dictionary<string, Type> Mirrors = new()
    {
        ["DwConvParams"] = typeof(DwConvParams),
        ["DwWgradParams"] = typeof(DwWgradParams),
        ["DwFusedParams"] = typeof(DwFusedParams),
        ["DwFusedWgradParams"] = typeof(DwFusedWgradParams),
        ["Conv2dParams"] = typeof(Conv2dParams),
        ["PermuteParams"] = typeof(PermuteParams),
        ["SlakDeviceLimits"] = typeof(DeviceLimits),
        ["SlakLaunchPlan"] = typeof(LaunchPlan),
    };

    // snake_case C field -> the C# field: a public field in PascalCase, or the backing field of a positional record.
    private static FieldInfo FieldOf(Type t, string cField)
    {
        string pascal = string.Concat(cField.Split('_').Select(p => char.ToUpperInvariant(p[0]) + p[1..]));
        const BindingFlags all = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
        return t.GetField(pascal, all) ?? t.GetField($"<{pascal}>k__BackingField", all)
            ?? throw new AssertionException($"{t.Name} has no field mirroring {cField} (looked for {pascal})");
    }

    private static long SizeOf(FieldInfo f)
    {
        if (f.GetCustomAttribute<FixedBufferAttribute>() is { } fixedBuffer)
            return fixedBuffer.Length * Marshal.SizeOf(fixedBuffer.ElementType);
        return Marshal.SizeOf(f.FieldType);
    }

    [Test]
    public void EveryMirrorMatchesTheHeaderFieldByField()
    {
        var rows = LaunchPlans.Layout();
        Assert.That(rows.Select(r => r.Type).Distinct(), Is.SupersetOf(Mirrors.Keys.Append("SparseSelectState")),
                    "the header's layout table lists every struct");
        foreach (var group in rows.GroupBy(r => r.Type))
        {
            long size = group.Single(r => r.Field.Length == 0).Size;
            if (group.Key == "SparseSelectState")
            {
                Assert.That(size, Is.EqualTo(SparseKernels.StateBytes), "sizeof(SparseSelectState) vs SparseKernels.StateBytes");
                continue;
            }
            var type = Mirrors[group.Key];
            Assert.That(Marshal.SizeOf(type), Is.EqualTo(size), $"sizeof({group.Key}) vs {type.Name}");
            var fields = group.Where(r => r.Field.Length > 0).ToList();
            var mirrored = type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
            Assert.That(mirrored, Has.Length.EqualTo(fields.Count), $"{type.Name} has one field per field of {group.Key}");
            foreach (var (_, field, offset, fieldSize) in fields)
            {
                var f = FieldOf(type, field);
                Assert.That((long)Marshal.OffsetOf(type, f.Name), Is.EqualTo(offset), $"offsetof({group.Key}, {field})");
                Assert.That(SizeOf(f), Is.EqualTo(fieldSize), $"sizeof({group.Key}::{field})");
            }
        }
    }

    [Test]
    public void LauncherConstantsAgreeWithTheHeader()
    {
        Assert.That(LaunchPlans.FusedMaxBranches, Is.EqualTo(DwConvFusedKernels.MaxBranches), "kFusedMaxBranches");
        Assert.That(LaunchPlans.Constant("kPermuteMaxRank"), Is.EqualTo(8), "PermuteParams holds 8 dimensions");
        Assert.That(LaunchPlans.Constant("kSparseRadixPasses"), Is.EqualTo(8), "SparseKernels runs 8 radix passes");
        Assert.Throws<ArgumentException>(() => LaunchPlans.Constant("no_such_constant"));
    }

    // Per-block shared memory (default, opt-in maximum) and per-SM capacity in KB, from the CUDA C++ Programming
    // Guide's compute-capability table and the Ampere / Ada / Hopper tuning guides.
    [TestCase(80, 163, 164, 2048, 32)]
    [TestCase(86, 99, 100, 1536, 16)]
    [TestCase(89, 99, 100, 1536, 24)]
    [TestCase(90, 227, 228, 2048, 32)]
    public void DeviceLimitTablesHoldTheDocumentedFigures(int sm, int optinKb, int perSmKb, int threadsPerSm,
                                                          int blocksPerSm)
    {
        var l = DeviceLimits.ForArchitecture(sm);
        Assert.Multiple(() =>
        {
            Assert.That(l.Sm, Is.EqualTo(sm));
            Assert.That((l.MaxGridX, l.MaxGridY, l.MaxGridZ), Is.EqualTo((int.MaxValue, 65535, 65535)));
            Assert.That((l.MaxBlockX, l.MaxBlockY, l.MaxBlockZ, l.MaxThreadsPerBlock), Is.EqualTo((1024, 1024, 64, 1024)));
            Assert.That((l.MaxRegsPerThread, l.MaxRegsPerBlock), Is.EqualTo((255, 65536)));
            Assert.That(l.SmemPerBlockDefault, Is.EqualTo(48 * 1024));
            Assert.That(l.SmemPerBlockOptin, Is.EqualTo(optinKb * 1024));
            Assert.That(l.SmemPerSm, Is.EqualTo(perSmKb * 1024));
            Assert.That((l.MaxThreadsPerSm, l.MaxBlocksPerSm, l.WarpSize), Is.EqualTo((threadsPerSm, blocksPerSm, 32)));
        });
    }

    [Test]
    public void AnArchitectureWithoutATableIsRefusedByName()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => DeviceLimits.ForArchitecture(75));
        Assert.That(e!.Message, Does.Contain("sm_75").And.Contain("sm_90"));
    }
}
