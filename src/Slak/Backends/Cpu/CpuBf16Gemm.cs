// bf16-input, fp32-accumulate GEMM on the CPU (the CPU backend's counterpart of a cuBLAS bf16 GEMM): C = bf16(A)
// bf16(B) + beta C, row-major, no transposes. Two paths with the same values up to summation order (a product of
// two bf16 values is exact in fp32):
//   - native: VDPBF16PS (AVX512-BF16) in libslak_cpu_bf16.so (native/cpu_bf16), because .NET 10's hardware intrinsics
//     do not expose the instruction (no Avx512Bf16 class; Avx10v2 is not on this CPU line). Loaded from the
//     application folder on first use; absent, unloadable or on a CPU without AVX512-BF16, IsSupported is false;
//   - portable: the operands rounded to bf16 (ReducedFloat) and the fp32 CPU GEMM.
// Whether the native path is worth using is measured by bench/Slak.Bench's bf16-gemm comparison
// (bench/results/bf16-gemm.md); the decision recorded there is what Bf16Backend follows.
using System.Runtime.InteropServices;
using Slak.Cuda.Runtime;

namespace Slak.Backends.Cpu;

/// <summary>bf16-input GEMM with fp32 accumulation: AVX512-BF16 native microkernel or the portable path.</summary>
internal static unsafe class CpuBf16Gemm
{
    /// <summary>File name of the native library (next to the assemblies).</summary>
    public const string LibraryName = "libslak_cpu_bf16.so";

    private const int RowsPerTask = 96;

    private static readonly Lazy<NativeApi?> Api = new(NativeApi.TryLoad);

    /// <summary>True when the native AVX512-BF16 path can run here (library loaded, CPU has the instruction).</summary>
    public static bool IsSupported => Api.Value is not null;

    /// <summary>C(m, n) = bf16(A)(m, k) bf16(B)(k, n) + beta C with fp32 accumulation (row strides lda, ldb, ldc);
    /// the native path when <paramref name="native"/> and <see cref="IsSupported"/>, else the portable one.</summary>
    public static void Gemm(int m, int n, int k, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
                            float beta, Span<float> c, int ldc, bool native = true)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        ArgumentOutOfRangeException.ThrowIfLessThan(lda, Math.Max(1, k));
        ArgumentOutOfRangeException.ThrowIfLessThan(ldb, Math.Max(1, n));
        ArgumentOutOfRangeException.ThrowIfLessThan(ldc, Math.Max(1, n));
        if (m == 0 || n == 0) return;
        if (k > 0)
        {
            if (a.Length < (long)(m - 1) * lda + k) throw new ArgumentException($"A has {a.Length} elements, needs {(long)(m - 1) * lda + k} (m={m}, k={k}, lda={lda})", nameof(a));
            if (b.Length < (long)(k - 1) * ldb + n) throw new ArgumentException($"B has {b.Length} elements, needs {(long)(k - 1) * ldb + n} (k={k}, n={n}, ldb={ldb})", nameof(b));
        }
        if (c.Length < (long)(m - 1) * ldc + n) throw new ArgumentException($"C has {c.Length} elements, needs {(long)(m - 1) * ldc + n} (m={m}, n={n}, ldc={ldc})", nameof(c));
        if (native && Api.Value is { } api && k > 0) Native(api, m, n, k, a, lda, b, ldb, beta, c, ldc);
        else Portable(m, n, k, a, lda, b, ldb, beta, c, ldc);
    }

    private static void Portable(int m, int n, int k, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
                                 float beta, Span<float> c, int ldc)
    {
        var ra = new float[k == 0 ? 0 : (long)(m - 1) * lda + k];
        var rb = new float[k == 0 ? 0 : (long)(k - 1) * ldb + n];
        ReducedFloat.RoundBf16(a[..ra.Length], ra);
        ReducedFloat.RoundBf16(b[..rb.Length], rb);
        CpuGemm.Sgemm(false, false, m, n, k, 1f, ra, lda, rb, ldb, beta, c, ldc);
    }

    private static void Native(NativeApi api, int m, int n, int k, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b,
                               int ldb, float beta, Span<float> c, int ldc)
    {
        var packed = new ushort[checked((long)api.PackedBytes(k, n) / sizeof(ushort))];
        fixed (float* pa = a, pb = b, pc = c)
        fixed (ushort* pp = packed)
        {
            api.PackB(k, n, pb, ldb, pp);
            nint aa = (nint)pa, cc = (nint)pc, bp = (nint)pp;
            int tasks = (m + RowsPerTask - 1) / RowsPerTask;
            CpuParallel.For(0, tasks, (long)m * n * k / 16, t =>
            {
                int r0 = t * RowsPerTask, rows = Math.Min(RowsPerTask, m - r0);
                api.GemmPacked(rows, n, k, (float*)aa + (long)r0 * lda, lda, (ushort*)bp, beta, (float*)cc + (long)r0 * ldc, ldc);
            });
        }
    }

    // The four entry points of libslak_cpu_bf16.so.
    private sealed class NativeApi
    {
        private readonly delegate* unmanaged<int, int, nuint> _packedBytes;
        private readonly delegate* unmanaged<int, int, float*, int, ushort*, void> _packB;
        private readonly delegate* unmanaged<int, int, int, float*, int, ushort*, float, float*, int, void> _gemmPacked;

        private NativeApi(nint handle)
        {
            _packedBytes = (delegate* unmanaged<int, int, nuint>)NativeLibrary.GetExport(handle, "slak_cpu_bf16_packed_b_bytes");
            _packB = (delegate* unmanaged<int, int, float*, int, ushort*, void>)NativeLibrary.GetExport(handle, "slak_cpu_bf16_pack_b");
            _gemmPacked = (delegate* unmanaged<int, int, int, float*, int, ushort*, float, float*, int, void>)
                NativeLibrary.GetExport(handle, "slak_cpu_bf16_gemm_packed");
        }

        public nuint PackedBytes(int k, int n) => _packedBytes(k, n);

        public void PackB(int k, int n, float* b, int ldb, ushort* packed) => _packB(k, n, b, ldb, packed);

        public void GemmPacked(int m, int n, int k, float* a, int lda, ushort* packed, float beta, float* c, int ldc) =>
            _gemmPacked(m, n, k, a, lda, packed, beta, c, ldc);

        public static NativeApi? TryLoad()
        {
            if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return null;
            string path = Path.Combine(AppContext.BaseDirectory, LibraryName);
            if (!NativeLibrary.TryLoad(path, out nint handle)) return null;
            if (!NativeLibrary.TryGetExport(handle, "slak_cpu_bf16_supported", out nint probe)) return null;
            return ((delegate* unmanaged<int>)probe)() != 0 ? new NativeApi(handle) : null;
        }
    }
}
