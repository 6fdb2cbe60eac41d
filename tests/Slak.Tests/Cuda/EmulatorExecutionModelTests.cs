// The CUDA execution model as the host emulator implements it, checked with the kernels of
// cuda/kernels/emu_selftest.cu: barriers with a static __shared__ tile and early-returning threads, dynamic shared
// memory, warp shuffles and votes, atomics, 2-D/3-D grids and blocks, and the block reductions of slak_common.cuh.
// Outputs are poisoned before every launch; expected values come from plain loops here.
using NUnit.Framework;
using Slak.Cuda.Emulation;
using Slak.Cuda.Runtime;
using static Slak.Tests.Cuda.EmulatorTestSupport;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed unsafe class EmulatorExecutionModelTests : EmulatedDeviceFixture
{
    [TestCase(1000, 256)]
    [TestCase(256, 256)]
    [TestCase(77, 64)]
    public void StaticSharedTileWithBarrierAndEarlyReturn(int n, int block)
    {
        var seed = NewSeed();
        var rng = new Random(seed);
        var x = Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble()).ToArray();
        var din = Upload<float>(Emu, x);
        var dout = Poisoned(Emu, n);
        ulong o = dout.Address, i = din.Address;
        var count = n;
        var grid = (n + block - 1) / block;
        Launch(Emu, "selftest_block_reverse_kernel", grid, block, 0, (nint)(&o), (nint)(&i), (nint)(&count));
        var got = Download<float>(Emu, dout, n);
        var want = new double[n];
        for (var b = 0; b < grid; b++)
        {
            var valid = Math.Min(block, n - b * block);
            for (var t = 0; t < valid; t++) want[b * block + t] = x[b * block + valid - 1 - t];
        }
        AssertClose(got, want, 0, 0, $"block reverse n={n} block={block} seed={seed}");
    }

    [TestCase(7, 300, 128)]
    [TestCase(3, 31, 32)]
    public void DynamicSharedMemoryOn2DGrid(int rows, int cols, int block)
    {
        var seed = NewSeed();
        var rng = new Random(seed);
        var x = Enumerable.Range(0, rows * cols).Select(_ => (float)rng.Next(-100, 100)).ToArray();
        var din = Upload<float>(Emu, x);
        var dout = Poisoned(Emu, rows * cols);
        ulong o = dout.Address, i = din.Address;
        int r = rows, c = cols;
        var grid = new Dim3(4, (uint)((rows + 3) / 4));  // one block per row, surplus blocks return at once
        Launch(Emu, "selftest_dynamic_smem_kernel", grid, block, cols * sizeof(float),
            (nint)(&o), (nint)(&i), (nint)(&r), (nint)(&c));
        var want = new double[rows * cols];
        for (var row = 0; row < rows; row++)
            for (var col = 0; col < cols; col++)
                want[row * cols + col] = (double)x[row * cols + col] - x[row * cols + (col + 1) % cols];
        AssertClose(Download<float>(Emu, dout, rows * cols), want, 0, 0,
            $"dynamic smem rows={rows} cols={cols} seed={seed}");
    }

    [Test]
    public void WarpShufflesAndVotes()
    {
        const int n = 256, block = 128, warps = n / 32;
        var seed = NewSeed();
        var rng = new Random(seed);
        // Small integers (exact float sums); per-warp ranges so that the votes take both values.
        var x = new float[n];
        for (var i = 0; i < n; i++)
        {
            var (lo, hi) = (i / 32 % 4) switch { 0 => (-4, 5), 1 => (-2, 3), 2 => (3, 6), _ => (-9, -3) };
            x[i] = rng.Next(lo, hi);
        }
        var din = Upload<float>(Emu, x);
        DevicePtr xorSum = Poisoned(Emu, n), downSum = Poisoned(Emu, warps), bcast = Poisoned(Emu, n),
                  scan = Poisoned(Emu, n), ballot = Poisoned(Emu, warps, 0xDEADBEEF),
                  vote = Poisoned(Emu, n, 0xDEADBEEF);
        ulong a0 = xorSum.Address, a1 = downSum.Address, a2 = bcast.Address, a3 = scan.Address,
              a4 = ballot.Address, a5 = vote.Address, a6 = din.Address;
        var count = n;
        Launch(Emu, "selftest_warp_kernel", n / block, block, 0, (nint)(&a0), (nint)(&a1), (nint)(&a2),
            (nint)(&a3), (nint)(&a4), (nint)(&a5), (nint)(&a6), (nint)(&count));

        double[] wantXor = new double[n], wantDown = new double[warps], wantBcast = new double[n],
                 wantScan = new double[n];
        var wantBallot = new uint[warps];
        var wantVote = new int[n];
        for (var w = 0; w < warps; w++)
        {
            var lanes = x.AsSpan(w * 32, 32);
            double sum = 0;
            foreach (var v in lanes) sum += v;
            wantDown[w] = sum;
            bool any = false, all = true;
            double running = 0;
            for (var l = 0; l < 32; l++)
            {
                wantXor[w * 32 + l] = sum;
                wantBcast[w * 32 + l] = lanes[l / 8 * 8 + 3];
                running += lanes[l];
                wantScan[w * 32 + l] = running;
                if (lanes[l] > 0) wantBallot[w] |= 1u << l;
                any |= lanes[l] > 2;
                all &= lanes[l] > -3;
            }
            for (var l = 0; l < 32; l++) wantVote[w * 32 + l] = (any ? 1 : 0) + (all ? 2 : 0);
        }
        var msg = $"seed={seed}";
        AssertClose(Download<float>(Emu, xorSum, n), wantXor, 0, 0, $"xor reduction {msg}");
        AssertClose(Download<float>(Emu, downSum, warps), wantDown, 0, 0, $"shfl_down reduction {msg}");
        AssertClose(Download<float>(Emu, bcast, n), wantBcast, 0, 0, $"shfl width 8 {msg}");
        AssertClose(Download<float>(Emu, scan, n), wantScan, 0, 0, $"shfl_up scan {msg}");
        Assert.That(Download<uint>(Emu, ballot, warps), Is.EqualTo(wantBallot), $"ballot {msg}");
        Assert.That(Download<int>(Emu, vote, n), Is.EqualTo(wantVote), $"any/all {msg}");
    }

    [Test]
    public void AtomicsAcrossBlocks()
    {
        const int n = 5000, block = 256;
        var seed = NewSeed();
        var rng = new Random(seed);
        var x = Enumerable.Range(0, n).Select(_ => rng.Next(-50, 51)).ToArray();
        var din = Upload<int>(Emu, x);
        var fsum = Upload<float>(Emu, [0f]);
        var isum = Upload<int>(Emu, [0]);
        var usum = Upload<ulong>(Emu, [0UL]);
        var count = Upload<uint>(Emu, [0u]);
        var imax = Upload<int>(Emu, [int.MinValue]);
        var umax = Upload<uint>(Emu, [0u]);
        var cas = Upload<int>(Emu, [0]);
        var last = Upload<int>(Emu, [int.MinValue]);
        ulong p0 = fsum.Address, p1 = isum.Address, p2 = usum.Address, p3 = count.Address, p4 = imax.Address,
              p5 = umax.Address, p6 = cas.Address, p7 = last.Address, p8 = din.Address;
        var nn = n;
        Launch(Emu, "selftest_atomics_kernel", (n + block - 1) / block, block, 0, (nint)(&p0), (nint)(&p1),
            (nint)(&p2), (nint)(&p3), (nint)(&p4), (nint)(&p5), (nint)(&p6), (nint)(&p7), (nint)(&p8), (nint)(&nn));
        var msg = $"seed={seed}";
        Assert.That(Download<float>(Emu, fsum, 1)[0], Is.EqualTo((float)x.Sum()), $"atomicAdd float {msg}");
        Assert.That(Download<int>(Emu, isum, 1)[0], Is.EqualTo(x.Sum()), $"atomicAdd int {msg}");
        Assert.That(Download<ulong>(Emu, usum, 1)[0], Is.EqualTo((ulong)x.Sum(v => (long)v + 1000)),
            $"atomicAdd ull {msg}");
        Assert.That(Download<uint>(Emu, count, 1)[0], Is.EqualTo((uint)n), $"atomicAdd unsigned {msg}");
        Assert.That(Download<int>(Emu, imax, 1)[0], Is.EqualTo(x.Max()), $"atomicMax int {msg}");
        Assert.That(Download<uint>(Emu, umax, 1)[0], Is.EqualTo((uint)(x.Max() + 1000)), $"atomicMax uint {msg}");
        Assert.That(Download<int>(Emu, cas, 1)[0], Is.EqualTo(n), $"atomicCAS loop {msg}");
        Assert.That(x, Does.Contain(Download<int>(Emu, last, 1)[0]), $"atomicExch {msg}");
    }

    [TestCase(37, 11, 5, 8, 4, 2)]
    [TestCase(50, 9, 1, 16, 16, 1)]
    [TestCase(3, 3, 70, 1, 1, 64)]
    public void MultiDimensionalGridsCoverEveryElement(int nx, int ny, int nz, int bx, int by, int bz)
    {
        var total = nx * ny * nz;
        var dout = Poisoned(Emu, total, 0xFFFFFFFF);
        ulong o = dout.Address;
        int x = nx, y = ny, z = nz;
        var grid = new Dim3((uint)((nx + bx - 1) / bx), (uint)((ny + by - 1) / by), (uint)((nz + bz - 1) / bz));
        Launch(Emu, "selftest_dims_kernel", grid, new Dim3((uint)bx, (uint)by, (uint)bz), 0,
            (nint)(&o), (nint)(&x), (nint)(&y), (nint)(&z));
        var got = Download<int>(Emu, dout, total);
        var want = new int[total];
        for (var k = 0; k < nz; k++)
            for (var j = 0; j < ny; j++)
                for (var i = 0; i < nx; i++)
                    want[(k * ny + j) * nx + i] = i + 1000 * j + 1000000 * k;
        Assert.That(got, Is.EqualTo(want), $"volume ({nz},{ny},{nx}) block ({bx},{by},{bz}) grid {grid}");
    }

    [TestCase(32)]
    [TestCase(96)]
    [TestCase(256)]
    [TestCase(1024)]
    public void BlockReductionsOfCommonHeader(int block)
    {
        const int rows = 5, cols = 1000;
        var seed = NewSeed();
        var rng = new Random(seed);
        var x = Enumerable.Range(0, rows * cols).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var din = Upload<float>(Emu, x);
        DevicePtr sums = Poisoned(Emu, rows), maxes = Poisoned(Emu, rows);
        var positives = Poisoned(Emu, rows, 0xFFFFFFFF);
        ulong s = sums.Address, m = maxes.Address, p = positives.Address, i = din.Address;
        var c = cols;
        Launch(Emu, "selftest_block_reduce_kernel", rows, block, 0, (nint)(&s), (nint)(&m), (nint)(&p), (nint)(&i),
            (nint)(&c));
        var wantSum = new double[rows];
        var wantMax = new double[rows];
        var wantPositive = new int[rows];
        for (var r = 0; r < rows; r++)
        {
            var row = x.AsSpan(r * cols, cols);
            double acc = 0;
            foreach (var v in row) acc += v;
            wantSum[r] = acc;
            wantMax[r] = row.ToArray().Max();
            wantPositive[r] = row[..Math.Min(block, cols)].ToArray().Count(v => v > 0);
        }
        // fp32 sum of 1000 values in [-1, 1]: error well below 1e-3.
        AssertClose(Download<float>(Emu, sums, rows), wantSum, 1e-3, 1e-5,
            $"block_reduce_sum block={block} seed={seed}");
        AssertClose(Download<float>(Emu, maxes, rows), wantMax, 0, 0, $"block_reduce_max block={block} seed={seed}");
        Assert.That(Download<int>(Emu, positives, rows), Is.EqualTo(wantPositive),
            $"__syncthreads_count block={block} seed={seed}");
    }

    [Test]
    public void EveryKernelFileIsRegistered()
    {
        var names = EmulatedDevice.RegisteredKernels;
        TestContext.Out.WriteLine($"{names.Count} kernels registered in {EmulatedDevice.LibraryPath}");
        Assert.That(names, Is.SupersetOf(new[]
        {
            "fill_kernel", "copy_kernel", "add_kernel", "mul_kernel", "axpy_kernel", "scale_kernel",
            "selftest_block_reverse_kernel", "selftest_dynamic_smem_kernel", "selftest_warp_kernel",
            "selftest_atomics_kernel", "selftest_dims_kernel", "selftest_block_reduce_kernel",
            "selftest_fault_kernel", "selftest_misuse_kernel",
        }));
        Assert.That(names, Is.Unique);
    }
}
