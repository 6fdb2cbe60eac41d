// The launch plans of cuda/include/slak/slak_plan.h, called through libslak_emu.so (cuda/capi/slak_plan_export.cpp):
// every C# launcher asks these functions for kernel, grid, block, shared bytes, splits, tiles and chunks, so the
// geometry rules exist once, in the header the kernels and the C ABI include. The library is built by `dotnet build`
// and ships next to Slak.Cuda on every machine (it is host code: loading it needs no GPU and starts no emulator).
using System.Runtime.InteropServices;
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>The launch plans (one function per kernel family) and the plan constants of slak_plan.h.</summary>
internal static unsafe class LaunchPlans
{
    private static readonly Lazy<Api> Native = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Threads of a 1-D block (<c>kSlakBlock</c>).</summary>
    public static int Block => Native.Value.Block;

    /// <summary>Grid cap of grid-stride loops (<c>kSlakGridStrideMaxBlocks</c>).</summary>
    public static int GridStrideMaxBlocks => Native.Value.GridStrideMaxBlocks;

    /// <summary>Threads of a one-block-per-row launch (<c>kSlakRowBlock</c>).</summary>
    public static int RowBlock => Native.Value.RowBlock;

    /// <summary>First-pass blocks of a deterministic sum (<c>kSlakSumBlocks</c>).</summary>
    public static int SumBlocks => Native.Value.SumBlocks;

    /// <summary>Maximum branches of the fused depthwise kernels (<c>kFusedMaxBranches</c>).</summary>
    public static int FusedMaxBranches => Native.Value.FusedMaxBranches;

    /// <summary>The value of a named constant of slak_plan.h / slak_params.h (e.g.
    /// <c>"kSparseMaxBlocks"</c>).</summary>
    public static long Constant(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        long value;
        nint utf8 = Marshal.StringToCoTaskMemUTF8(name);
        try
        {
            if (Native.Value.Constant((byte*)utf8, &value) != 0)
                throw new ArgumentException($"slak_plan.h has no constant named '{name}'", nameof(name));
        }
        finally { Marshal.FreeCoTaskMem(utf8); }
        return value;
    }

    /// <summary>The limits table of <paramref name="sm"/>, when slak_limits.h has one.</summary>
    internal static bool TryLimits(int sm, out DeviceLimits limits)
    {
        DeviceLimits l;
        bool ok = Native.Value.Limits(sm, &l) == 0;
        limits = ok ? l : default;
        return ok;
    }

    /// <summary>A grid-stride loop over <paramref name="n"/> elements (blocks capped at
    /// <paramref name="maxBlocks"/>, by default <see cref="GridStrideMaxBlocks"/>).</summary>
    public static LaunchPlan GridStride(long n, DeviceLimits limits, int block = 0, int maxBlocks = 0)
    {
        block = block == 0 ? Block : block;
        maxBlocks = maxBlocks == 0 ? GridStrideMaxBlocks : maxBlocks;
        LaunchPlan p;
        return Check(Native.Value.GridStride(n, block, maxBlocks, &limits, &p), p, "grid_stride",
                     $"n={n}, block={block}, max_blocks={maxBlocks}");
    }

    /// <summary>One block of <paramref name="block"/> threads per row.</summary>
    public static LaunchPlan Rows(long rows, int block, DeviceLimits limits)
    {
        LaunchPlan p;
        return Check(Native.Value.Rows(rows, block, &limits, &p), p, "rows", $"rows={rows}, block={block}");
    }

    /// <summary>One thread per element, no loop (ceil(n / block) blocks).</summary>
    public static LaunchPlan Elements(long n, int block, DeviceLimits limits)
    {
        LaunchPlan p;
        return Check(Native.Value.Elements(n, block, &limits, &p), p, "elements", $"n={n}, block={block}");
    }

    /// <summary>Deterministic column sums of a (rows, c) matrix: chunks, rows per chunk, partials.</summary>
    public static LaunchPlan ColumnSum(long rows, long c, DeviceLimits limits)
    {
        LaunchPlan p;
        return Check(Native.Value.ColumnSum(rows, c, &limits, &p), p, "column_sum", $"rows={rows}, c={c}");
    }

    /// <summary>Per-branch depthwise forward / input gradient (tiled with an image split, or direct).</summary>
    public static LaunchPlan DwConvForward(long n, long c, long h, long w, int kh, int kw, DeviceLimits limits)
    {
        LaunchPlan p;
        return Check(Native.Value.DwConvFwd(n, c, h, w, kh, kw, &limits, &p), p, "dwconv_fwd",
                     $"N={n}, C={c}, H={h}, W={w}, kh={kh}, kw={kw}");
    }

    /// <summary>Per-branch depthwise weight gradient (tiles, chunks, workspace).</summary>
    public static LaunchPlan DwConvWeightGrad(long n, long c, long h, long w, int kh, int kw, DeviceLimits limits)
    {
        LaunchPlan p;
        return Check(Native.Value.DwConvWgrad(n, c, h, w, kh, kw, &limits, &p), p, "dwconv_wgrad",
                     $"N={n}, C={c}, H={h}, W={w}, kh={kh}, kw={kw}");
    }

    /// <summary>Fused depthwise forward / input gradient / inference sum of all branches.</summary>
    public static LaunchPlan DwConvFused(long n, long c, long h, long w, ReadOnlySpan<int> kh, ReadOnlySpan<int> kw,
                                         DeviceLimits limits)
    {
        CheckBranches(kh, kw);
        LaunchPlan p;
        fixed (int* pkh = kh, pkw = kw)
            return Check(Native.Value.DwConvFused(n, c, h, w, kh.Length, pkh, pkw, &limits, &p), p, "dwconv_fused",
                         $"N={n}, C={c}, H={h}, W={w}, kernels {Kernels(kh, kw)}");
    }

    /// <summary>Depthwise forward / input gradient / inference sum for small maps: dwconv_small_kernel's plan
    /// (<see cref="PlanKernel.DwConvSmall"/>) when slak_plan.h's predicate takes the shape, else
    /// <see cref="DwConvFused"/>'s plan.</summary>
    public static LaunchPlan DwConvSmall(long n, long c, long h, long w, ReadOnlySpan<int> kh, ReadOnlySpan<int> kw,
                                         DeviceLimits limits)
    {
        CheckBranches(kh, kw);
        LaunchPlan p;
        fixed (int* pkh = kh, pkw = kw)
            return Check(Native.Value.DwConvSmall(n, c, h, w, kh.Length, pkh, pkw, &limits, &p), p, "dwconv_small",
                         $"N={n}, C={c}, H={h}, W={w}, kernels {Kernels(kh, kw)}");
    }

    /// <summary>Fused depthwise weight gradient of all branches.</summary>
    public static LaunchPlan DwConvFusedWeightGrad(long n, long c, long h, long w, ReadOnlySpan<int> kh,
                                                   ReadOnlySpan<int> kw, DeviceLimits limits)
    {
        CheckBranches(kh, kw);
        LaunchPlan p;
        fixed (int* pkh = kh, pkw = kw)
            return Check(Native.Value.DwConvFusedWgrad(n, c, h, w, kh.Length, pkh, pkw, &limits, &p), p,
                         "dwconv_fused_wgrad", $"N={n}, C={c}, H={h}, W={w}, kernels {Kernels(kh, kw)}");
    }

    /// <summary>How <paramref name="plan"/> breaks the limits of <paramref name="limits"/>, or
    /// <see cref="PlanViolation.WithinLimits"/>.</summary>
    public static PlanViolation Violation(LaunchPlan plan, DeviceLimits limits) =>
        (PlanViolation)Native.Value.Violation(&plan, &limits);

    /// <summary>The layout table of the params structs (struct, field or "" for the struct's size, offset,
    /// size).</summary>
    public static IReadOnlyList<(string Type, string Field, long Offset, long Size)> Layout()
    {
        var rows = new List<(string, string, long, long)>();
        for (int i = 0; ; i++)
        {
            byte* type, field;
            long offset, size;
            if (Native.Value.LayoutRow(i, &type, &field, &offset, &size) != 0) break;
            rows.Add((Marshal.PtrToStringUTF8((nint)type)!, Marshal.PtrToStringUTF8((nint)field)!, offset, size));
        }
        return rows;
    }

    private static void CheckBranches(ReadOnlySpan<int> kh, ReadOnlySpan<int> kw)
    {
        if (kh.Length != kw.Length || kh.Length == 0)
            throw new ArgumentException($"one kernel height and width per branch, got {kh.Length} heights and " +
                                        $"{kw.Length} widths", nameof(kh));
    }

    private static string Kernels(ReadOnlySpan<int> kh, ReadOnlySpan<int> kw)
    {
        var parts = new string[kh.Length];
        for (int b = 0; b < kh.Length; b++) parts[b] = $"{kh[b]}x{kw[b]}";
        return string.Join(" + ", parts);
    }

    private static LaunchPlan Check(int status, LaunchPlan plan, string family, string shape) => status switch
    {
        0 => plan,
        -2 => throw new ArgumentException($"slak_plan_{family}: no kernel of the family can launch {shape} on this " +
                                          "device (a grid dimension would exceed its limit)"),
        _ => throw new ArgumentException($"slak_plan_{family}: invalid shape {shape} (sizes must be >= 0, kernels " +
                                         "odd and >= 1)"),
    };

    private sealed class Api
    {
        public required delegate* unmanaged<int, DeviceLimits*, int> Limits { get; init; }
        public required delegate* unmanaged<long, int, int, DeviceLimits*, LaunchPlan*, int> GridStride { get; init; }
        public required delegate* unmanaged<long, int, DeviceLimits*, LaunchPlan*, int> Rows { get; init; }
        public required delegate* unmanaged<long, int, DeviceLimits*, LaunchPlan*, int> Elements { get; init; }
        public required delegate* unmanaged<long, long, DeviceLimits*, LaunchPlan*, int> ColumnSum { get; init; }
        public required delegate* unmanaged<long, long, long, long, int, int, DeviceLimits*, LaunchPlan*, int> DwConvFwd
        { get; init; }
        public required delegate* unmanaged<long, long, long, long, int, int, DeviceLimits*, LaunchPlan*, int>
            DwConvWgrad { get; init; }
        public required delegate* unmanaged<long, long, long, long, int, int*, int*, DeviceLimits*, LaunchPlan*, int>
            DwConvFused { get; init; }
        public required delegate* unmanaged<long, long, long, long, int, int*, int*, DeviceLimits*, LaunchPlan*, int>
            DwConvFusedWgrad { get; init; }
        public required delegate* unmanaged<long, long, long, long, int, int*, int*, DeviceLimits*, LaunchPlan*, int>
            DwConvSmall { get; init; }
        public required delegate* unmanaged<LaunchPlan*, DeviceLimits*, int> Violation { get; init; }
        public required delegate* unmanaged<byte*, long*, int> Constant { get; init; }
        public required delegate* unmanaged<int, byte**, byte**, long*, long*, int> LayoutRow { get; init; }
        public int Block, GridStrideMaxBlocks, RowBlock, SumBlocks, FusedMaxBranches;
    }

    private static Api Load()
    {
        string path = Emulation.EmuNative.Library.Path;
        nint h = NativeLibrary.Load(path);
        nint Export(string name) => NativeLibrary.TryGetExport(h, name, out var address)
            ? address
            : throw new EntryPointNotFoundException($"{path} lacks the launch-plan export {name}; rebuild it");
        var api = new Api
        {
            Limits = (delegate* unmanaged<int, DeviceLimits*, int>)Export("slak_emu_plan_limits"),
            GridStride = (delegate* unmanaged<long, int, int, DeviceLimits*, LaunchPlan*, int>)
                Export("slak_emu_plan_grid_stride"),
            Rows = (delegate* unmanaged<long, int, DeviceLimits*, LaunchPlan*, int>)Export("slak_emu_plan_rows"),
            Elements = (delegate* unmanaged<long, int, DeviceLimits*, LaunchPlan*, int>)Export("slak_emu_plan_elements"),
            ColumnSum = (delegate* unmanaged<long, long, DeviceLimits*, LaunchPlan*, int>)
                Export("slak_emu_plan_column_sum"),
            DwConvFwd = (delegate* unmanaged<long, long, long, long, int, int, DeviceLimits*, LaunchPlan*, int>)
                Export("slak_emu_plan_dwconv_fwd"),
            DwConvWgrad = (delegate* unmanaged<long, long, long, long, int, int, DeviceLimits*, LaunchPlan*, int>)
                Export("slak_emu_plan_dwconv_wgrad"),
            DwConvFused = (delegate* unmanaged<long, long, long, long, int, int*, int*, DeviceLimits*, LaunchPlan*, int>)
                Export("slak_emu_plan_dwconv_fused"),
            DwConvFusedWgrad =
                (delegate* unmanaged<long, long, long, long, int, int*, int*, DeviceLimits*, LaunchPlan*, int>)
                Export("slak_emu_plan_dwconv_fused_wgrad"),
            DwConvSmall = (delegate* unmanaged<long, long, long, long, int, int*, int*, DeviceLimits*, LaunchPlan*, int>)
                Export("slak_emu_plan_dwconv_small"),
            Violation = (delegate* unmanaged<LaunchPlan*, DeviceLimits*, int>)Export("slak_emu_plan_violation"),
            Constant = (delegate* unmanaged<byte*, long*, int>)Export("slak_emu_plan_constant"),
            LayoutRow = (delegate* unmanaged<int, byte**, byte**, long*, long*, int>)Export("slak_emu_plan_layout"),
        };
        long Get(string name)
        {
            long v;
            nint utf8 = Marshal.StringToCoTaskMemUTF8(name);
            try
            {
                if (api.Constant((byte*)utf8, &v) != 0)
                    throw new EntryPointNotFoundException($"{path} lacks the plan constant {name}; rebuild it");
            }
            finally { Marshal.FreeCoTaskMem(utf8); }
            return v;
        }
        api.Block = (int)Get("kSlakBlock");
        api.GridStrideMaxBlocks = (int)Get("kSlakGridStrideMaxBlocks");
        api.RowBlock = (int)Get("kSlakRowBlock");
        api.SumBlocks = (int)Get("kSlakSumBlocks");
        api.FusedMaxBranches = (int)Get("kFusedMaxBranches");
        return api;
    }
}
