// The check's top level: options, the case list, and the three ways of running it — in this process (--isolate
// none, and every child), as the driver of one child process per case group (--isolate process, the default), or
// one of the side jobs (--list, --build-kernel-cache).
using System.Globalization;
using Slak.Backends;
using Slak.Backends.Cuda;
using Slak.Cuda.Compilation;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;

namespace Slak.GpuCheck;

/// <summary>Entry point logic (separate from Main so tests can run the check in-process).</summary>
internal static class CheckApp
{
    /// <summary>Exit code of a child whose device became unusable (sticky CUDA error) after its last row.</summary>
    public const int StickyExitCode = 3;

    /// <summary>Prefix of a row line on a child's standard output: "@@ROW index markdown".</summary>
    public const string RowPrefix = "@@ROW\t";

    /// <summary>Prefix of the device line on a child's standard output.</summary>
    public const string DevicePrefix = "@@DEVICE\t";

    /// <summary>Runs the check with <paramref name="args"/>; the table goes to <paramref name="stdout"/> (and
    /// --out).</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter stdout)
    {
        CheckOptions options;
        IReadOnlyList<GpuCase> cases;
        try
        {
            options = CheckOptions.Parse(args);
            if (options.Help)
            {
                stdout.WriteLine(CheckOptions.Usage);
                return 0;
            }

            if (options.BuildKernelCache is { } dir)
            {
                return BuildKernelCache(dir, options.Arch, stdout);
            }

            cases = CaseCatalog.Select(options);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"gpu-check: {e.Message}");
            return 2;
        }

        if (options.List)
        {
            foreach (var c in cases) stdout.WriteLine($"{c.Group}\t{c.Name}\t{c.Op}");
            return 0;
        }

        if (options.Child)
        {
            return RunCases(cases, options, Math.Min(options.From, cases.Count), Math.Min(options.To, cases.Count),
                (i, row) => stdout.WriteLine(RowPrefix + i.ToString(CultureInfo.InvariantCulture) + "\t" + row.ToMarkdown(options.PeakTflops)),
                name => stdout.WriteLine(DevicePrefix + name), child: true);
        }

        using var table = new TableWriter(options, stdout);
        if (options.Isolate == Isolation.Process)
        {
            new ProcessDriver(options, cases, table).Run();
        }
        else
        {
            RunCases(cases, options, 0, cases.Count, (_, row) => table.Write(row), table.SetDevice, child: false);
        }

        return table.Finish();
    }

    /// <summary>Runs cases [from, to) in this process, handing each row to <paramref name="emit"/> and device facts
    /// (name; at the end, where the kernel modules came from) to <paramref name="device"/>. In a child, a
    /// sticky device error ends the process with <see cref="StickyExitCode"/>; otherwise the remaining rows are
    /// marked skip.</summary>
    public static int RunCases(IReadOnlyList<GpuCase> cases, CheckOptions options, int from, int to,
                               Action<int, RowResult> emit, Action<string> device, bool child, IBlockSampler? blockSampler = null)
    {
        var dev = Device.Parse(options.Device);
        if (!CudaBackend.IsAvailable(dev, out string why))
        {
            for (int i = from; i < to; i++) emit(i, RowResult.Failed(cases[i].Name, cases[i].Op, $"device {dev} unavailable: {why}"));
            return 0;
        }

        var gpu = (CudaBackend)BackendRegistry.For(dev);
        device($"{gpu.Gpu.Name}, compute capability {gpu.Gpu.ComputeCapability.Major}.{gpu.Gpu.ComputeCapability.Minor}");
        var sampler = blockSampler ?? new EmuBlockSampler(gpu.Gpu);
        // Sampled execution at production sizes: the emulator commits only the pages a case touches.
        if (options.Sample && gpu.Gpu is Slak.Cuda.Emulation.EmulatedDevice emu) emu.LazyMemory = true;
        string? dead = null;
        for (int i = from; i < to; i++)
        {
            var c = cases[i];
            if (dead is not null)
            {
                emit(i, RowResult.Skipped(c.Name, c.Op, dead));
                continue;
            }

            if (Skip(c, options, sampler) is { } reason)
            {
                emit(i, RowResult.Skipped(c.Name, c.Op, reason));
                continue;
            }

            Console.Error.WriteLine($"gpu-check: {c.Name} ({c.Op}) ...");
            string? fault = InjectedFault(c.Name);
            if (fault == "crash")
            {
                Console.Error.WriteLine($"gpu-check: {FaultVariable}: crashing in {c.Name}");
                Environment.Exit(134);
            }

            if (fault == "sticky")
            {
                emit(i, RowResult.Failed(c.Name, c.Op, $"{FaultVariable}: injected sticky device error"));
                dead = $"device unusable after {c.Name} failed (injected)";
                if (child) return StickyExitCode;
                continue;
            }

            RowResult row;
            var ctx = new CheckContext(gpu, options, c, sampler, new SlakRandom(0x1234UL + (ulong)i));
            try
            {
                c.Run(ctx);
                row = ctx.Result ?? RowResult.Failed(c.Name, c.Op, "the case produced no result");
            }
            catch (Exception e)
            {
                row = RowResult.Failed(c.Name, c.Op, $"{e.GetType().Name}: {e.Message}");
            }
            finally
            {
                SafeDispose(ctx);
            }

            foreach (string line in ctx.SampleLog) Console.Error.WriteLine($"  sample: {line}");
            Console.Error.WriteLine($"  {row.StatusWord} {row.Note}");
            emit(i, row);
            GC.Collect();
            if (row.Status == RowStatus.Fail && !CheckContext.DeviceUsable(gpu, out string problem))
            {
                dead = $"device unusable after {c.Name} failed ({problem})";
                Console.Error.WriteLine($"gpu-check: {dead}");
                if (child) return StickyExitCode;
            }
        }

        if (gpu.Gpu is CudaDriverDevice driver)
        {
            device($"kernel modules: {driver.Cache.Prebuilt?.Hits ?? 0} prebuilt ({PrebuiltKernelCache.DirectoryVariable}), " +
                   $"{driver.Cache.Hits} from the kernel cache, {driver.Cache.Misses} compiled by NVRTC");
        }

        return 0;
    }

    /// <summary>Test-only fault injection (GpuCheckIsolationTests): "crash:NAME" ends the process when case NAME
    /// starts (as a segfault would); "sticky:NAME" fails case NAME and marks the device unusable (as a sticky CUDA
    /// error would).</summary>
    public const string FaultVariable = "SLAK_GPUCHECK_FAULT";

    private static string? InjectedFault(string caseName) =>
        Environment.GetEnvironmentVariable(FaultVariable) is { } v && v.Split(':', 2) is [var kind, var name] && name == caseName
            ? kind : null;

    private static string? Skip(GpuCase c, CheckOptions options, IBlockSampler sampler)
    {
        if (!options.Sample) return null;
        if (c.Sampling == SampleHandling.Skip) return $"not sampled: {c.SampleNote}";
        if (c.Sampling != SampleHandling.Whole && !sampler.IsAvailable(out string reason)) return $"no sampled execution: {reason}";
        return null;
    }

    private static void SafeDispose(CheckContext ctx)
    {
        try
        {
            ctx.Dispose();
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"gpu-check: releasing the case's tensors failed: {e.Message}");
        }
    }

    /// <summary>Compiles every kernel file for sm_<paramref name="arch"/> with the local NVRTC into a prebuilt
    /// cache folder (see <see cref="PrebuiltKernelCache"/>).</summary>
    private static int BuildKernelCache(string dir, int arch, TextWriter stdout)
    {
        try
        {
            // The fused depthwise kernel as the launcher specialises it for SLaK-T's stages (M x 5, 5 x M, 5 x 5).
            var sizes = Sizes.For(full: true);
            var specs = sizes.M.Select(m => ("kernels/dwconv_fused.cu", DwConvFusedKernels.Specialization(
                [new(DevicePtr.Null, DevicePtr.Null, m, sizes.Small), new(DevicePtr.Null, DevicePtr.Null, sizes.Small, m),
                 new(DevicePtr.Null, DevicePtr.Null, sizes.Small, sizes.Small)]))).ToList();
            var built = PrebuiltKernelCache.Build(dir, KernelSources.Embedded, arch, specializations: specs);
            stdout.WriteLine($"gpu-check: {built.Count} kernel modules compiled for sm_{arch} into {dir}");
            foreach (string line in built) stdout.WriteLine($"  {line}");
            return 0;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Console.Error.WriteLine($"gpu-check: building the kernel cache failed: {e.GetType().Name}: {e.Message}");
            return 1;
        }
    }
}
