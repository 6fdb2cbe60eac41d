// Helpers shared by the emulator tests: device buffers from/to arrays, NaN poisoning, tolerance checks that report
// the first mismatches and the seed, and a raw launcher for the self-test kernels (which have no typed launcher).
using NUnit.Framework;
using Slak.Cuda.Emulation;
using Slak.Cuda.Runtime;

namespace Slak.Tests.Cuda;

internal static unsafe class EmulatorTestSupport
{
    /// <summary>The bit pattern of a quiet NaN, written into outputs before a kernel runs.</summary>
    internal const uint NaNBits = 0x7FC00000u;

    internal static DevicePtr Upload<T>(IGpuDevice dev, ReadOnlySpan<T> data) where T : unmanaged
    {
        var ptr = dev.Allocate((long)data.Length * sizeof(T));
        dev.CopyToDevice(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data), ptr);
        return ptr;
    }

    /// <summary>A buffer of <paramref name="count"/> 32-bit words, every one set to <paramref name="bits"/>.</summary>
    internal static DevicePtr Poisoned(IGpuDevice dev, long count, uint bits = NaNBits)
    {
        var ptr = dev.Allocate(count * 4);
        dev.Memset32(ptr, bits, count);
        return ptr;
    }

    internal static T[] Download<T>(IGpuDevice dev, DevicePtr ptr, int count) where T : unmanaged
    {
        var result = new T[count];
        dev.CopyToHost(ptr, System.Runtime.InteropServices.MemoryMarshal.AsBytes(result.AsSpan()));
        return result;
    }

    /// <summary>Asserts |actual - expected| &lt;= atol + rtol * |expected| element-wise (NaN fails).</summary>
    internal static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, double atol,
                                     double rtol, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), $"{what}: length");
        var bad = 0;
        var first = new List<string>();
        double maxErr = 0;
        for (var i = 0; i < actual.Length; i++)
        {
            var err = Math.Abs(actual[i] - expected[i]);
            if (!(err <= atol + rtol * Math.Abs(expected[i])))
            {
                bad++;
                if (first.Count < 5) first.Add($"[{i}] got {actual[i]} want {expected[i]}");
            }
            if (err > maxErr || double.IsNaN(err)) maxErr = err;
        }
        Assert.That(bad, Is.Zero,
            $"{what}: {bad} of {actual.Length} elements outside atol={atol} + rtol={rtol}*|ref| " +
            $"(max error {maxErr}); first: {string.Join(", ", first)}");
    }

    /// <summary>Launches a kernel with arguments given as (pointer-to-value) words built by the caller.</summary>
    internal static void Launch(IGpuDevice dev, string kernel, Dim3 grid, Dim3 block, int sharedBytes,
                                params ReadOnlySpan<nint> args) =>
        dev.Launch(dev.GetKernel(kernel), grid, block, sharedBytes, args);

    /// <summary>Runs <paramref name="run"/> (which launches on <paramref name="dev"/> and returns the raw bits of
    /// its outputs) with the fibers of every block in thread order, in reverse order and in a random order seeded
    /// with <paramref name="seed"/>; the device's other checks stay as they are and its schedule is restored.</summary>
    internal static (uint[] InOrder, uint[] Reversed, uint[] Shuffled) RunInThreeOrders(
        EmulatedDevice dev, Func<uint[]> run, ulong seed)
    {
        const EmulatorChecks schedule = EmulatorChecks.ReverseSchedule | EmulatorChecks.ShuffleSchedule;
        var (checks, oldSeed) = (dev.Checks, dev.ScheduleSeed);
        try
        {
            dev.Checks = checks & ~schedule;
            var inOrder = run();
            dev.Checks = (checks & ~schedule) | EmulatorChecks.ReverseSchedule;
            var reversed = run();
            dev.Checks = (checks & ~schedule) | EmulatorChecks.ShuffleSchedule;
            dev.ScheduleSeed = seed;
            var shuffled = run();
            return (inOrder, reversed, shuffled);
        }
        finally
        {
            (dev.Checks, dev.ScheduleSeed) = (checks, oldSeed);
        }
    }

    /// <summary>Asserts that the outputs of <paramref name="run"/> are bit-identical in the three schedules of
    /// <see cref="RunInThreeOrders"/> (a kernel whose result depends on the order of its threads between barriers
    /// lacks a <c>__syncthreads</c> or <c>__syncwarp</c>).</summary>
    internal static void AssertScheduleIndependent(EmulatedDevice dev, Func<uint[]> run, ulong seed, string what)
    {
        var (inOrder, reversed, shuffled) = RunInThreeOrders(dev, run, seed);
        Assert.That(FirstDifference(inOrder, reversed), Is.Null, $"{what}: thread order vs reverse order");
        Assert.That(FirstDifference(inOrder, shuffled), Is.Null, $"{what}: thread order vs shuffled (seed {seed})");
    }

    /// <summary>"[i] 0x... vs 0x..." for the first word where two outputs differ, or null when bit-identical.</summary>
    internal static string? FirstDifference(uint[] a, uint[] b)
    {
        if (a.Length != b.Length) return $"lengths {a.Length} vs {b.Length}";
        for (var i = 0; i < a.Length; i++)
            if (a[i] != b[i]) return $"[{i}] 0x{a[i]:x8} vs 0x{b[i]:x8}";
        return null;
    }

    /// <summary>Asserts that launching <paramref name="kernel"/> throws <typeparamref name="T"/> and returns it.
    /// </summary>
    internal static T LaunchFails<T>(IGpuDevice dev, string kernel, Dim3 grid, Dim3 block, int sharedBytes,
                                     params nint[] args) where T : Exception =>
        Assert.Throws<T>(() => dev.Launch(dev.GetKernel(kernel), grid, block, sharedBytes, args))!;

    /// <summary>A fresh seed per run, to be printed in every failure message.</summary>
    internal static int NewSeed() => Environment.TickCount & int.MaxValue;
}
