// The entry points of include/slak/slak.h (and include/slak/slak_cpu.h), exported from libslak_kernels_cpu.so by
// Native AOT. Each validates its arguments (Validation.cs: the rules and messages of cuda/capi/slak_capi.cpp), then
// runs the C# CPU depthwise engine -- CpuDwConvDecomposed, the code the CPU backend of Slak runs -- on the caller's
// host buffers: multithreaded (CpuParallel: SLAK_NUM_THREADS, slak_cpu_set_num_threads, default the core count) and
// sparse-aware (masked taps are skipped in all three passes). Workspaces are never needed (every *_workspace_size
// answers 0); `stream` is ignored: calls are synchronous. No exception crosses the ABI.
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Slak.Backends.Cpu;

namespace Slak.Native;

internal static unsafe class Exports
{
    private const int AbiVersion = 1;

    [UnmanagedCallersOnly(EntryPoint = "slak_abi_version")]
    private static int SlakAbiVersion() => AbiVersion;

    [UnmanagedCallersOnly(EntryPoint = "slak_backend_name")]
    private static byte* SlakBackendName() => Literal("cpu\0"u8);

    [UnmanagedCallersOnly(EntryPoint = "slak_last_error")]
    private static byte* SlakLastError() => LastError.Pointer;

    [UnmanagedCallersOnly(EntryPoint = "slak_status_string")]
    private static byte* SlakStatusString(int status) => status switch
    {
        0 => Literal("SLAK_STATUS_SUCCESS\0"u8),
        1 => Literal("SLAK_STATUS_NULL_POINTER\0"u8),
        2 => Literal("SLAK_STATUS_INVALID_ARGUMENT\0"u8),
        3 => Literal("SLAK_STATUS_UNSUPPORTED_LAYOUT\0"u8),
        4 => Literal("SLAK_STATUS_WORKSPACE_TOO_SMALL\0"u8),
        5 => Literal("SLAK_STATUS_PROBLEM_TOO_LARGE\0"u8),
        6 => Literal("SLAK_STATUS_LAUNCH_FAILED\0"u8),
        7 => Literal("SLAK_STATUS_INTERNAL_ERROR\0"u8),
        _ => Literal("unknown slak_status\0"u8),
    };

    // A u8 literal lives in the image's read-only data: its address is stable for the life of the library.
    private static byte* Literal(ReadOnlySpan<byte> text) => (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(text));

    [UnmanagedCallersOnly(EntryPoint = "slak_cpu_num_threads")]
    private static int SlakCpuNumThreads() => CpuParallel.Threads;

    [UnmanagedCallersOnly(EntryPoint = "slak_cpu_set_num_threads")]
    private static int SlakCpuSetNumThreads(int threads)
    {
        if (threads < 1)
            return (int)Set(SlakStatus.InvalidArgument, string.Create(CultureInfo.InvariantCulture,
                $"slak_cpu_set_num_threads: threads must be >= 1, got {threads}"));
        CpuParallel.Threads = threads;
        return Ok();
    }

    [UnmanagedCallersOnly(EntryPoint = "slak_dwconv2d_params_init")]
    private static int SlakDwconv2dParamsInit(SingleParams* p, long n, long c, long h, long w, int kh, int kw)
    {
        if (p == null) return (int)Set(SlakStatus.NullPointer, "slak_dwconv2d_params_init: p is NULL");
        *p = default;
        p->N = n;
        p->C = c;
        p->H = h;
        p->W = w;
        p->Kh = kh;
        p->Kw = kw;
        long[] s = [c * h * w, h * w, w, 1];
        for (int d = 0; d < 4; d++) p->XStride[d] = p->YStride[d] = s[d];
        return (int)Set(SlakStatus.Success, "");
    }

    // ---- one branch: the decomposed operator with one branch ----

    [UnmanagedCallersOnly(EntryPoint = "slak_dwconv2d_fwd")]
    private static int SlakDwconv2dFwd(SingleParams* p, float* y, float* x, float* w, float* mask, void* stream) =>
        SingleConv("slak_dwconv2d_fwd", p, flip: false, y, x, w, mask);

    [UnmanagedCallersOnly(EntryPoint = "slak_dwconv2d_bwd_data")]
    private static int SlakDwconv2dBwdData(SingleParams* p, float* dx, float* dy, float* w, float* mask, void* stream) =>
        SingleConv("slak_dwconv2d_bwd_data", p, flip: true, dx, dy, w, mask);

    // The forward (y from x) or, flipped, the input gradient (dx from dy) of one branch.
    private static int SingleConv(string fn, SingleParams* p, bool flip, float* output, float* input, float* w, float* mask)
    {
        string outName = flip ? "dx" : "y", inName = flip ? "dy" : "x";
        try
        {
            var g = Validation.CheckSingle(fn, p);
            bool any = g.Numel > 0;
            Validation.Need(fn, output, outName, any);
            Validation.Need(fn, input, inName, any);
            Validation.Need(fn, w, "w", any);
            if (any && output == input)
                throw Validation.Fail(SlakStatus.InvalidArgument, $"{fn}: {outName} and {inName} are the same buffer (in place is not supported)");
            if (any) Engine.Conv(g, [(p->Kh, p->Kw)], flip, output, input, [(nint)w], [(nint)mask]);
            return Ok();
        }
        catch (Exception e)
        {
            return Failed(fn, e);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "slak_dwconv2d_bwd_filter_workspace_size")]
    private static int SlakDwconv2dBwdFilterWorkspaceSize(SingleParams* p, nuint* bytes) =>
        NoWorkspace("slak_dwconv2d_bwd_filter_workspace_size", bytes, fn => Validation.CheckSingle(fn, p));

    [UnmanagedCallersOnly(EntryPoint = "slak_dwconv2d_bwd_filter")]
    private static int SlakDwconv2dBwdFilter(SingleParams* p, float* dw, float* x, float* dy, float* mask,
        int skipMasked, void* workspace, nuint workspaceBytes, void* stream)
    {
        const string fn = "slak_dwconv2d_bwd_filter";
        try
        {
            var g = Validation.CheckSingle(fn, p);
            bool any = g.Numel > 0;
            Validation.Need(fn, dw, "dw", g.C > 0);
            Validation.Need(fn, x, "x", any);
            Validation.Need(fn, dy, "dy", any);
            if (skipMasked != 0 && mask == null)
                throw Validation.Fail(SlakStatus.NullPointer, string.Create(CultureInfo.InvariantCulture, $"{fn}: skip_masked={skipMasked} needs a mask, got NULL"));
            Engine.FilterGrad(g, [(p->Kh, p->Kw)], [(nint)dw], x, dy, [(nint)mask], skipMasked != 0);
            return Ok();
        }
        catch (Exception e)
        {
            return Failed(fn, e);
        }
    }

    // ---- decomposed ----

    [UnmanagedCallersOnly(EntryPoint = "slak_decomposed_dwconv2d_workspace_size")]
    private static int SlakDecomposedWorkspaceSize(DecomposedParams* p, nuint* bytes) =>
        NoWorkspace("slak_decomposed_dwconv2d_workspace_size", bytes, fn => Validation.CheckDecomposed(fn, p));

    [UnmanagedCallersOnly(EntryPoint = "slak_decomposed_dwconv2d_bwd_filter_workspace_size")]
    private static int SlakDecomposedBwdFilterWorkspaceSize(DecomposedParams* p, nuint* bytes) =>
        NoWorkspace("slak_decomposed_dwconv2d_bwd_filter_workspace_size", bytes, fn => Validation.CheckDecomposed(fn, p));

    [UnmanagedCallersOnly(EntryPoint = "slak_decomposed_dwconv2d_fwd")]
    private static int SlakDecomposedFwd(DecomposedParams* p, float* y, float* x, float** w, float** masks,
        void* workspace, nuint workspaceBytes, void* stream) =>
        DecomposedConv("slak_decomposed_dwconv2d_fwd", p, flip: false, y, x, w, masks);

    [UnmanagedCallersOnly(EntryPoint = "slak_decomposed_dwconv2d_bwd_data")]
    private static int SlakDecomposedBwdData(DecomposedParams* p, float* dx, float* dy, float** w, float** masks,
        void* workspace, nuint workspaceBytes, void* stream) =>
        DecomposedConv("slak_decomposed_dwconv2d_bwd_data", p, flip: true, dx, dy, w, masks);

    private static int DecomposedConv(string fn, DecomposedParams* p, bool flip, float* output, float* input,
        float** w, float** masks)
    {
        try
        {
            var g = Validation.CheckDecomposed(fn, p);
            bool any = g.Numel > 0;
            Validation.Need(fn, output, flip ? "dx" : "y", any);
            Validation.Need(fn, input, flip ? "dy" : "x", any);
            Validation.Need(fn, w, "w", any);
            if (!any) return Ok();
            var kernels = new (int Kh, int Kw)[p->NumBranches];
            var ws = new nint[p->NumBranches];
            var ms = new nint[p->NumBranches];
            for (int b = 0; b < kernels.Length; b++)
            {
                if (w[b] == null) throw Validation.Fail(SlakStatus.NullPointer, string.Create(CultureInfo.InvariantCulture, $"{fn}: w[{b}] is NULL"));
                kernels[b] = (p->Kh[b], p->Kw[b]);
                ws[b] = (nint)w[b];
                ms[b] = masks != null ? (nint)masks[b] : 0;
            }
            if (output == input)
                throw Validation.Fail(SlakStatus.InvalidArgument, $"{fn}: output and input are the same buffer");
            Engine.Conv(g, kernels, flip, output, input, ws, ms);
            return Ok();
        }
        catch (Exception e)
        {
            return Failed(fn, e);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "slak_decomposed_dwconv2d_bwd_filter")]
    private static int SlakDecomposedBwdFilter(DecomposedParams* p, float** dw, float* x, float* dy, float** masks,
        int skipMasked, void* workspace, nuint workspaceBytes, void* stream)
    {
        const string fn = "slak_decomposed_dwconv2d_bwd_filter";
        try
        {
            var g = Validation.CheckDecomposed(fn, p);
            bool any = g.Numel > 0;
            Validation.Need(fn, dw, "dw", g.C > 0);
            Validation.Need(fn, x, "x", any);
            Validation.Need(fn, dy, "dy", any);
            var kernels = new (int Kh, int Kw)[p->NumBranches];
            var dws = new nint[p->NumBranches];
            var ms = new nint[p->NumBranches];
            for (int b = 0; b < kernels.Length; b++)
            {
                if (g.C > 0 && dw[b] == null) throw Validation.Fail(SlakStatus.NullPointer, string.Create(CultureInfo.InvariantCulture, $"{fn}: dw[{b}] is NULL"));
                if (skipMasked != 0 && (masks == null || masks[b] == null))
                    throw Validation.Fail(SlakStatus.NullPointer,
                        string.Create(CultureInfo.InvariantCulture, $"{fn}: skip_masked={skipMasked} needs masks[{b}], got NULL"));
                kernels[b] = (p->Kh[b], p->Kw[b]);
                dws[b] = g.C > 0 ? (nint)dw[b] : 0;
                ms[b] = masks != null ? (nint)masks[b] : 0;
            }
            Engine.FilterGrad(g, kernels, dws, x, dy, ms, skipMasked != 0);
            return Ok();
        }
        catch (Exception e)
        {
            return Failed(fn, e);
        }
    }

    // ---- status and message ----

    // A *_workspace_size query: the arguments are checked as the call itself would check them; the answer is 0
    // (the CPU engine needs no workspace).
    private static int NoWorkspace(string fn, nuint* bytes, Action<string> checkParams)
    {
        try
        {
            Validation.Need(fn, bytes, "bytes", true);
            checkParams(fn);
            *bytes = 0;
            return Ok();
        }
        catch (Exception e)
        {
            return Failed(fn, e);
        }
    }

    private static SlakStatus Set(SlakStatus status, string message)
    {
        LastError.Set(message);
        return status;
    }

    private static int Ok() => (int)Set(SlakStatus.Success, "");

    // No exception may cross the C ABI: a validation failure is its status, anything else SLAK_STATUS_INTERNAL_ERROR.
    private static int Failed(string fn, Exception e) => e is SlakException s
        ? (int)Set(s.Status, s.Message)
        : (int)Set(SlakStatus.InternalError, $"{fn}: {e.GetType().Name}: {e.Message}");
}
