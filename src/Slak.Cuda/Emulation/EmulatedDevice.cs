// The "cuda-emu" device: runs the kernels of cuda/ on the CPU through the host emulator (libslak_emu.so), over
// host memory, behind the same IGpuDevice as a real GPU, so the CUDA backend runs unchanged in CI without a GPU.
// Launches are synchronous (the emulator runs every block before returning); GEMMs go to an injectable host GEMM.
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text;
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Emulation;

/// <summary>An emulated CUDA device: host memory, kernels executed by the host emulator.</summary>
internal sealed unsafe class EmulatedDevice : IGpuDevice
{
    private const int MaxThreadsPerBlock = 1024;
    private const int MaxDynamicSharedBytes = 227 * 1024;

    private static readonly ConcurrentDictionary<string, long> s_launchCounts = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, long> s_instanceLaunchCounts = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<nint, string> s_instanceOf = new();

    private readonly Lock _gate = new();
    private readonly HostAllocator _memory = new();
    private readonly HostSgemmFunc? _hostSgemm;
    private readonly Dictionary<string, KernelHandle> _kernels = new(StringComparer.Ordinal);
    private readonly Dictionary<nint, int> _arity = [];
    private EmulatorChecks _checks;
    private uint[]? _sample;
    private bool _disposed;

    private EmulatedDevice(HostSgemmFunc? hostSgemm)
    {
        _hostSgemm = hostSgemm;
        Checks = DefaultChecks;
        ScheduleSeed = DefaultScheduleSeed;
    }

    /// <summary>The checks a new device starts with: process-wide, initially those of the <c>SLAK_EMU_CHECKS</c>
    /// environment variable (see <see cref="EmulatorCheckSettings"/>).</summary>
    public static EmulatorChecks DefaultChecks { get; set; } = EmulatorCheckSettings.FromEnvironment();

    /// <summary>The shuffle seed a new device starts with: initially <c>SLAK_EMU_SEED</c>, else 1.</summary>
    public static ulong DefaultScheduleSeed { get; set; } = EmulatorCheckSettings.SeedFromEnvironment();

    /// <summary>The sanitizers of this device's launches (and of its allocations, for
    /// <see cref="EmulatorChecks.BoundsCheck"/>: it places allocations made while it is on).</summary>
    public EmulatorChecks Checks
    {
        get => _checks;
        set
        {
            lock (_gate)
            {
                _checks = value;
                _memory.GuardEnd = (value & EmulatorChecks.BoundsCheck) != 0;
            }
        }
    }

    /// <summary>Seed of the shuffled schedule (<see cref="EmulatorChecks.ShuffleSchedule"/>); it appears in every
    /// error of a shuffled launch, so a failure replays with the same seed.</summary>
    public ulong ScheduleSeed { get; set; }

    /// <summary>When true, fresh device memory is not poisoned, so that its pages are committed only when a kernel
    /// or copy writes them (memory is always reserved lazily): production-size tensors fit in host memory when a
    /// sampled launch (<see cref="SampleBlocks"/>) touches only part of them. Unwritten memory then reads as zeros,
    /// not NaN. Applies to allocations made while it is on.</summary>
    public bool LazyMemory
    {
        get { lock (_gate) return _memory.Lazy; }
        set { lock (_gate) _memory.Lazy = value; }
    }

    /// <summary>Number of blocks the last successful launch of this process executed (the grid, or the sampled
    /// blocks inside it).</summary>
    public static long LastLaunchBlocks => (long)EmuNative.Library.LastLaunchBlocks();

    /// <summary>Makes the launches of this device execute only the given blocks (blocks outside a launch's grid are
    /// skipped, duplicates run once) until the returned scope is disposed, which restores the previous sample.
    /// Build the list with <see cref="BlockSample.Standard"/>. An empty list means every block.</summary>
    public IDisposable SampleBlocks(IReadOnlyList<(int X, int Y, int Z)> blocks)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        var xyz = new uint[blocks.Count * 3];
        for (var i = 0; i < blocks.Count; i++)
        {
            var (x, y, z) = blocks[i];
            if (x < 0 || y < 0 || z < 0)
                throw new ArgumentOutOfRangeException(nameof(blocks), $"block ({x},{y},{z}) has a negative index");
            xyz[3 * i] = (uint)x;
            xyz[3 * i + 1] = (uint)y;
            xyz[3 * i + 2] = (uint)z;
        }
        lock (_gate)
        {
            var previous = _sample;
            _sample = xyz.Length == 0 ? null : xyz;
            return new SampleScope(this, previous);
        }
    }

    /// <summary>Makes each launch of this device ask <paramref name="choose"/>(kernel name, grid) which blocks to run
    /// (null or empty: every block) until the returned scope is disposed, which restores the previous chooser. Used by
    /// the GPU check's sampled execution, which picks blocks per kernel (e.g. whole columns of a weight
    /// gradient).</summary>
    public IDisposable ChooseBlocks(Func<string, Dim3, IReadOnlyList<(int X, int Y, int Z)>?> choose)
    {
        ArgumentNullException.ThrowIfNull(choose);
        lock (_gate)
        {
            var previous = _chooser;
            _chooser = choose;
            return new ChooserScope(this, previous);
        }
    }

    private Func<string, Dim3, IReadOnlyList<(int X, int Y, int Z)>?>? _chooser;

    private sealed class ChooserScope(EmulatedDevice device, Func<string, Dim3, IReadOnlyList<(int X, int Y, int Z)>?>? previous) : IDisposable
    {
        private bool _done;

        public void Dispose()
        {
            if (_done) return;
            _done = true;
            lock (device._gate) device._chooser = previous;
        }
    }

    private sealed class SampleScope(EmulatedDevice device, uint[]? previous) : IDisposable
    {
        private bool _done;

        public void Dispose()
        {
            if (_done) return;
            _done = true;
            lock (device._gate) device._sample = previous;
        }
    }

    /// <summary>Opens the emulated device. Throws <see cref="DllNotFoundException"/> (listing every probe) when
    /// libslak_emu.so cannot be loaded.</summary>
    /// <param name="hostSgemm">The host GEMM that <see cref="Sgemm"/> runs (the role cuBLAS has on a GPU; the Slak
    /// library passes its CPU GEMM); null: a simple correct loop with double accumulation.</param>
    public static EmulatedDevice Open(HostSgemmFunc? hostSgemm = null)
    {
        _ = EmuNative.Library;
        return new EmulatedDevice(hostSgemm);
    }

    /// <summary>Launches per kernel name since the process started, over every emulated device (including launches
    /// in which the kernel failed).</summary>
    public static IReadOnlyDictionary<string, long> LaunchCounts => s_launchCounts;

    /// <summary>Launches per specialised instance (<see cref="InstanceName"/>) since the process started; each is also
    /// counted in <see cref="LaunchCounts"/> under its kernel's name.</summary>
    public static IReadOnlyDictionary<string, long> InstanceLaunchCounts => s_instanceLaunchCounts;

    /// <summary>Names of every kernel compiled into the emulator library (all <c>extern "C" __global__</c>
    /// functions of <c>cuda/kernels/*.cu</c>).</summary>
    public static IReadOnlyList<string> RegisteredKernels
    {
        get
        {
            var api = EmuNative.Library;
            var names = new string[api.KernelCount()];
            for (var i = 0; i < names.Length; i++)
                names[i] = System.Runtime.InteropServices.Marshal.PtrToStringUTF8((nint)api.KernelName(i))!;
            return names;
        }
    }

    /// <summary>Path of the loaded emulator library.</summary>
    public static string LibraryPath => EmuNative.Library.Path;

    /// <inheritdoc />
    public string Name => "cuda-emu (host emulator)";

    /// <inheritdoc />
    public bool IsEmulated => true;

    /// <inheritdoc />
    public int Ordinal => 0;

    /// <inheritdoc />
    public (int Major, int Minor) ComputeCapability => (9, 0);

    /// <inheritdoc />
    public GpuMemoryStats MemoryStats
    {
        get { lock (_gate) return _memory.Stats; }
    }

    // ---- memory ----

    /// <inheritdoc />
    public DevicePtr Allocate(long bytes)
    {
        if (bytes < 0)
            throw new ArgumentOutOfRangeException(nameof(bytes), $"cannot allocate a negative size, got {bytes}");
        lock (_gate)
        {
            ThrowIfDisposed();
            return _memory.Allocate(bytes);
        }
    }

    /// <inheritdoc />
    public void Free(DevicePtr ptr)
    {
        lock (_gate) _memory.Free(ptr);
    }

    /// <inheritdoc />
    public void EmptyCache()
    {
        lock (_gate) if (!_disposed) _memory.EmptyCache();
    }

    /// <inheritdoc />
    public void CopyToDevice(ReadOnlySpan<byte> source, DevicePtr destination)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            _memory.CheckRange(destination, source.Length, nameof(destination));
        }
        source.CopyTo(new Span<byte>((void*)destination.Address, source.Length));
    }

    /// <inheritdoc />
    public void CopyToHost(DevicePtr source, Span<byte> destination)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            _memory.CheckRange(source, destination.Length, nameof(source));
        }
        new ReadOnlySpan<byte>((void*)source.Address, destination.Length).CopyTo(destination);
    }

    /// <inheritdoc />
    public void CopyDeviceToDevice(DevicePtr source, DevicePtr destination, long bytes)
    {
        if (bytes < 0) throw new ArgumentOutOfRangeException(nameof(bytes), $"negative copy size {bytes}");
        lock (_gate)
        {
            ThrowIfDisposed();
            _memory.CheckRange(source, bytes, nameof(source));
            _memory.CheckRange(destination, bytes, nameof(destination));
        }
        Buffer.MemoryCopy((void*)source.Address, (void*)destination.Address, bytes, bytes);
    }

    /// <inheritdoc />
    public void Memset32(DevicePtr destination, uint value, long count)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), $"negative word count {count}");
        lock (_gate)
        {
            ThrowIfDisposed();
            _memory.CheckRange(destination, count * 4, nameof(destination));
        }
        var p = (uint*)destination.Address;
        for (long done = 0; done < count;)
        {
            var chunk = (int)Math.Min(count - done, 1 << 28);
            new Span<uint>(p + done, chunk).Fill(value);
            done += chunk;
        }
    }

    /// <inheritdoc />
    public void Synchronize() => ThrowIfDisposed();

    // ---- kernels ----

    /// <inheritdoc />
    public KernelHandle GetKernel(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        lock (_gate)
        {
            ThrowIfDisposed();
            if (_kernels.TryGetValue(name, out var cached)) return cached;
            var api = EmuNative.Library;
            nint handle;
            int status;
            var utf8 = Encoding.UTF8.GetBytes(name + "\0");
            fixed (byte* p = utf8) status = api.FindKernel(p, &handle);
            if (status != 0) throw new ArgumentException($"cuda-emu: {api.LastErrorMessage()}", nameof(name));
            var kernel = new KernelHandle(name, handle);
            _kernels[name] = kernel;
            _arity[handle] = api.KernelArity(handle);
            return kernel;
        }
    }

    /// <summary>The kernel of the module specialised with <paramref name="specialization"/> where the emulator
    /// library holds that instance (registered as <see cref="InstanceName"/>; the test library builds a few, see
    /// CMakeLists.txt), else the instance of the longest leading part of the definitions that the library holds (a
    /// definition that changes the kernel's types comes first, e.g. SLAK_DW_BF16=1, whose instance libslak_emu.so
    /// always holds), else the generic kernel, which kernels written for specialisation run correctly too.</summary>
    public KernelHandle GetKernel(string name, IReadOnlyList<string> specialization)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(specialization);
        if (specialization.Count == 0) return GetKernel(name);
        string instance = InstanceName(name, specialization);
        lock (_gate)
        {
            ThrowIfDisposed();
            if (_kernels.TryGetValue(instance, out var cached)) return cached;
            var api = EmuNative.Library;
            nint handle = 0;
            int status = -1;
            string found = instance;
            for (int count = specialization.Count; count > 0 && status != 0; count--)
            {
                found = count == specialization.Count ? instance : InstanceName(name, [.. specialization.Take(count)]);
                var utf8 = Encoding.UTF8.GetBytes(found + "\0");
                fixed (byte* p = utf8) status = api.FindKernel(p, &handle);
            }
            if (status == 0)
            {
                // The handle keeps the kernel's own name (launch counts, block choosers and errors name the kernel);
                // launches of the instance are also counted under the instance's name (InstanceLaunchCounts).
                var kernel = new KernelHandle(name, handle);
                _kernels[instance] = kernel;
                _arity[handle] = api.KernelArity(handle);
                s_instanceOf[handle] = found;
                return kernel;
            }
        }
        return GetKernel(name);
    }

    /// <summary>The registered name of a kernel of a specialised instance: the name followed by __NAME_VALUE for each
    /// definition NAME=VALUE (characters other than letters, digits and _ as _), as cuda/emu/gen_registry.cmake
    /// names them.</summary>
    public static string InstanceName(string name, IReadOnlyList<string> specialization)
    {
        ArgumentNullException.ThrowIfNull(specialization);
        var sb = new StringBuilder(name);
        foreach (string d in specialization)
        {
            sb.Append("__");
            foreach (char ch in d) sb.Append(char.IsAsciiLetterOrDigit(ch) || ch == '_' ? ch : '_');
        }
        return sb.ToString();
    }

    /// <summary>Whether the loaded emulator library holds the instance of <paramref name="name"/> specialised by
    /// <paramref name="specialization"/> (<see cref="InstanceName"/>), for launchers whose unspecialised module
    /// cannot run.</summary>
    public static bool HasInstance(string name, IReadOnlyList<string> specialization)
    {
        var utf8 = Encoding.UTF8.GetBytes(InstanceName(name, specialization) + "\0");
        nint handle;
        fixed (byte* p = utf8) return EmuNative.Library.FindKernel(p, &handle) == 0;
    }

    /// <inheritdoc />
    public void Launch(KernelHandle kernel, Dim3 grid, Dim3 block, int sharedBytes, ReadOnlySpan<nint> args) =>
        Launch(kernel, grid, block, sharedBytes, args, default, sizesGiven: false);

    /// <inheritdoc />
    public void Launch(KernelHandle kernel, Dim3 grid, Dim3 block, int sharedBytes, ReadOnlySpan<nint> args,
                       ReadOnlySpan<int> argSizes) =>
        Launch(kernel, grid, block, sharedBytes, args, argSizes, sizesGiven: true);

    private void Launch(KernelHandle kernel, Dim3 grid, Dim3 block, int sharedBytes, ReadOnlySpan<nint> args,
                        ReadOnlySpan<int> argSizes, bool sizesGiven)
    {
        int arity;
        EmulatorChecks checks;
        uint[]? sample;
        Func<string, Dim3, IReadOnlyList<(int X, int Y, int Z)>?>? chooser;
        lock (_gate)
        {
            ThrowIfDisposed();
            if (kernel.Handle == 0 || !_arity.TryGetValue(kernel.Handle, out arity))
                throw new ArgumentException(
                    $"kernel '{kernel.Name}' was not obtained from GetKernel of this device", nameof(kernel));
            checks = _checks;
            sample = _sample;
            chooser = _chooser;
        }
        if (chooser?.Invoke(kernel.Name, grid) is { } chosen)
        {
            // A per-launch choice (sampled execution of the GPU check) wins over the fixed sample; an empty list
            // (or null) from the chooser means every block.
            sample = chosen.Count == 0 ? null : new uint[chosen.Count * 3];
            for (int i = 0; i < chosen.Count; i++)
            {
                var (x, y, z) = chosen[i];
                if (x < 0 || y < 0 || z < 0)
                    throw new ArgumentOutOfRangeException(nameof(grid), $"kernel '{kernel.Name}': sampled block ({x},{y},{z}) has a negative index");
                sample![3 * i] = (uint)x;
                sample[3 * i + 1] = (uint)y;
                sample[3 * i + 2] = (uint)z;
            }
        }
        if (block.Count > MaxThreadsPerBlock || block.X == 0 || block.Y == 0 || block.Z == 0)
            throw new ArgumentException(
                $"kernel '{kernel.Name}': block ({block.X},{block.Y},{block.Z}) has {block.Count} threads; " +
                $"each dimension must be >= 1 and the total <= {MaxThreadsPerBlock}", nameof(block));
        if (grid.X == 0 || grid.Y == 0 || grid.Z == 0 || grid.Y > 65535 || grid.Z > 65535 || grid.X > int.MaxValue)
            throw new ArgumentException(
                $"kernel '{kernel.Name}': grid ({grid.X},{grid.Y},{grid.Z}) is invalid (each >= 1, y and z <= 65535)",
                nameof(grid));
        if (sharedBytes < 0 || sharedBytes > MaxDynamicSharedBytes)
            throw new ArgumentOutOfRangeException(nameof(sharedBytes),
                $"kernel '{kernel.Name}': {sharedBytes} bytes of dynamic shared memory (0..{MaxDynamicSharedBytes})");
        if (args.Length != arity)
            throw new ArgumentException(
                $"kernel '{kernel.Name}' takes {arity} arguments, got {args.Length}", nameof(args));
        if (sizesGiven && argSizes.Length != args.Length)
            throw new ArgumentException(
                $"kernel '{kernel.Name}': {argSizes.Length} argument sizes for {args.Length} arguments",
                nameof(argSizes));

        var api = EmuNative.Library;
        int status;
        var flags = (uint)(checks & (EmulatorChecks.ReverseSchedule | EmulatorChecks.ShuffleSchedule |
                                     EmulatorChecks.PoisonStaticShared | EmulatorChecks.SharedRaces));
        fixed (nint* a = args)
        fixed (int* sizes = argSizes)
        fixed (uint* blocks = sample)
        {
            var options = new EmuNative.LaunchOptions
            {
                Size = (uint)sizeof(EmuNative.LaunchOptions),
                Flags = flags,
                Seed = ScheduleSeed,
                Blocks = blocks,
                BlockCount = sample is null ? 0 : sample.Length / 3,
                ArgSizes = sizesGiven ? sizes : null,
                ArgCount = sizesGiven ? argSizes.Length : 0,
            };
            // A span of length 0 may pin to null; the emulator needs a non-null array whenever sizes are checked.
            int none = 0;
            if (sizesGiven && options.ArgSizes == null) options.ArgSizes = &none;
            status = api.LaunchEx(kernel.Handle, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z,
                                  (uint)sharedBytes, a, &options);
        }
        // Counted whether or not the kernel failed: it was executed (the count measures test coverage).
        s_launchCounts.AddOrUpdate(kernel.Name, 1, static (_, c) => c + 1);
        if (s_instanceOf.TryGetValue(kernel.Handle, out var instance))
            s_instanceLaunchCounts.AddOrUpdate(instance, 1, static (_, c) => c + 1);
        if (status != 0) throw new EmulatorException(kernel.Name, $"cuda-emu: {DescribeFailure(api)}");
    }

    /// <summary>Throws an <see cref="EmulatorException"/> when a word of [<paramref name="output"/>,
    /// + <paramref name="bytes"/>) holds the poison of fresh device memory (0xFFFFFFFF) after kernel
    /// <paramref name="kernel"/> ran (see <see cref="EmulatorChecks.UnwrittenOutputs"/>).</summary>
    public void CheckWritten(string kernel, int argument, DevicePtr output, long bytes)
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            _memory.CheckRange(output, bytes, nameof(output));
        }
        var words = new ReadOnlySpan<uint>((void*)output.Address, checked((int)(bytes / 4)));
        var first = words.IndexOf(0xFFFFFFFFu);
        if (first < 0) return;
        var count = CountPoison(words);
        throw new EmulatorException(kernel,
            $"cuda-emu: kernel '{kernel}': output argument {argument} ({bytes} bytes at {output}) holds the poison " +
            $"of fresh device memory in {count} of {words.Length} words after the launch, first at word {first} " +
            $"(address 0x{output.Address + (ulong)first * 4:x}): never written, or computed from memory nobody wrote");
    }

    private static int CountPoison(ReadOnlySpan<uint> words)
    {
        var n = 0;
        foreach (var w in words) n += w == 0xFFFFFFFFu ? 1 : 0;
        return n;
    }

    // The emulator's message; for a memory fault, where the address lies relative to this device's allocations.
    private string DescribeFailure(EmuNative.Api api)
    {
        var message = api.LastErrorMessage();
        if (!message.Contains("invalid memory access", StringComparison.Ordinal)) return message;
        string? where;
        lock (_gate) where = _disposed ? null : _memory.Describe(api.LastFaultAddress());
        return where is null ? message : $"{message}; the address is {where}";
    }

    // ---- GEMM ----

    /// <inheritdoc />
    public void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
                      DevicePtr a, int lda, DevicePtr b, int ldb, float beta, DevicePtr c, int ldc)
    {
        if (m < 0 || n < 0 || k < 0)
            throw new ArgumentOutOfRangeException(nameof(m), $"sgemm sizes must be >= 0, got m={m} n={n} k={k}");
        int aCols = transA ? m : k, bCols = transB ? k : n;
        if (lda < Math.Max(1, aCols)) throw new ArgumentOutOfRangeException(nameof(lda), $"lda={lda} < {aCols}");
        if (ldb < Math.Max(1, bCols)) throw new ArgumentOutOfRangeException(nameof(ldb), $"ldb={ldb} < {bCols}");
        if (ldc < Math.Max(1, n)) throw new ArgumentOutOfRangeException(nameof(ldc), $"ldc={ldc} < {n}");
        if (m == 0 || n == 0) return;
        lock (_gate)
        {
            ThrowIfDisposed();
            _memory.CheckRange(c, ((long)(m - 1) * ldc + n) * 4, nameof(c));
            if (k > 0)
            {
                int aRows = transA ? k : m, bRows = transB ? n : k;
                _memory.CheckRange(a, ((long)(aRows - 1) * lda + aCols) * 4, nameof(a));
                _memory.CheckRange(b, ((long)(bRows - 1) * ldb + bCols) * 4, nameof(b));
            }
        }
        var gemm = _hostSgemm ?? FallbackSgemm;
        if (AllowTf32 && k > 0)
        {
            // TF32 math: the operands rounded to TF32 (10 mantissa bits, nearest even) as tensor cores read them.
            int aRows = transA ? k : m, bRows = transB ? n : k;
            var ra = RoundedTf32Copy(a, checked((long)(aRows - 1) * lda + aCols));
            var rb = RoundedTf32Copy(b, checked((long)(bRows - 1) * ldb + bCols));
            fixed (float* pa = ra, pb = rb)
                gemm(transA, transB, m, n, k, alpha, (nint)pa, lda, (nint)pb, ldb, beta, (nint)c.Address, ldc);
            return;
        }
        gemm(transA, transB, m, n, k, alpha, (nint)a.Address, lda, (nint)b.Address, ldb, beta, (nint)c.Address, ldc);
    }

    /// <inheritdoc />
    public void GemmBf16(bool transA, bool transB, int m, int n, int k, float alpha,
                         DevicePtr a, int lda, DevicePtr b, int ldb, float beta, DevicePtr c, int ldc)
    {
        GemmArguments.Validate(transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
        HostGemmBf16(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        Interlocked.Increment(ref s_bf16Gemms);
    }

    /// <inheritdoc />
    public void GemmBf16StridedBatched(bool transA, bool transB, int m, int n, int k, float alpha,
                                       DevicePtr a, int lda, long strideA, DevicePtr b, int ldb, long strideB,
                                       float beta, DevicePtr c, int ldc, long strideC, int batch)
    {
        GemmArguments.Validate(transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
        GemmArguments.ValidateBatch(batch, strideA, strideB, strideC);
        // cublasGemmStridedBatchedEx computes every item as cublasGemmEx would: the same host GEMM per item.
        for (int i = 0; i < batch; i++)
            HostGemmBf16(transA, transB, m, n, k, alpha, a.Offset(i * strideA * sizeof(ushort)), lda,
                         b.Offset(i * strideB * sizeof(ushort)), ldb, beta, c.Offset(i * strideC * sizeof(float)), ldc);
        Interlocked.Increment(ref s_bf16Gemms);
    }

    // The stand-in for one cublasGemmEx with CUDA_R_16BF operands (arguments validated by the caller).
    private void HostGemmBf16(bool transA, bool transB, int m, int n, int k, float alpha,
                              DevicePtr a, int lda, DevicePtr b, int ldb, float beta, DevicePtr c, int ldc)
    {
        if (m == 0 || n == 0) return;
        int aRows = transA ? k : m, aCols = transA ? m : k, bRows = transB ? n : k, bCols = transB ? k : n;
        long aCount = k > 0 ? (long)(aRows - 1) * lda + aCols : 0, bCount = k > 0 ? (long)(bRows - 1) * ldb + bCols : 0;
        lock (_gate)
        {
            ThrowIfDisposed();
            _memory.CheckRange(c, ((long)(m - 1) * ldc + n) * sizeof(float), nameof(c));
            if (k > 0)
            {
                _memory.CheckRange(a, aCount * sizeof(ushort), nameof(a));
                _memory.CheckRange(b, bCount * sizeof(ushort), nameof(b));
            }
        }
        // cublasGemmEx with CUDA_R_16BF operands and CUBLAS_COMPUTE_32F: every bf16 value is exact in float32, so the
        // float32 GEMM over the widened operands is the same computation (TF32 math does not apply to bf16 inputs).
        var fa = WidenedBf16Copy(a, aCount);
        var fb = WidenedBf16Copy(b, bCount);
        var gemm = _hostSgemm ?? FallbackSgemm;
        fixed (float* pa = fa, pb = fb)
            gemm(transA, transB, m, n, k, alpha, (nint)pa, lda, (nint)pb, ldb, beta, (nint)c.Address, ldc);
    }

    /// <summary>How many <see cref="GemmBf16"/> and <see cref="GemmBf16StridedBatched"/> calls this process ran (a
    /// batched call counts once, as the one cuBLAS call it is on a GPU; tests check that a bf16 path reached
    /// them).</summary>
    public static long Bf16GemmCount => Interlocked.Read(ref s_bf16Gemms);

    private static long s_bf16Gemms;

    private static float[] WidenedBf16Copy(DevicePtr source, long count)
    {
        var copy = new float[Math.Max(count, 1)];
        var bits = new ReadOnlySpan<ushort>((void*)source.Address, checked((int)count));
        for (int i = 0; i < bits.Length; i++) copy[i] = ReducedFloat.FromBf16Bits(bits[i]);
        return copy;
    }

    /// <summary>GEMMs with TF32 math (cuBLAS's CUBLAS_TF32_TENSOR_OP_MATH on a GPU): <see cref="Sgemm"/> rounds its A
    /// and B operands to TF32 (round to nearest even) before the float32 GEMM. Off by default.</summary>
    public bool AllowTf32 { get; set; }

    private static float[] RoundedTf32Copy(DevicePtr source, long count)
    {
        var copy = new float[count];
        ReducedFloat.RoundTf32(new ReadOnlySpan<float>((void*)source.Address, checked((int)count)), copy);
        return copy;
    }

    // A plain reference GEMM: slow, only used when no host GEMM was injected.
    private static void FallbackSgemm(bool transA, bool transB, int m, int n, int k, float alpha,
                                      nint a, int lda, nint b, int ldb, float beta, nint c, int ldc)
    {
        var pa = (float*)a;
        var pb = (float*)b;
        var pc = (float*)c;
        for (var i = 0; i < m; i++)
        {
            for (var j = 0; j < n; j++)
            {
                double acc = 0;
                for (var p = 0; p < k; p++)
                {
                    var av = transA ? pa[(long)p * lda + i] : pa[(long)i * lda + p];
                    var bv = transB ? pb[(long)j * ldb + p] : pb[(long)p * ldb + j];
                    acc += (double)av * bv;
                }
                ref var cv = ref pc[(long)i * ldc + j];
                cv = beta == 0 ? (float)(alpha * acc) : (float)(alpha * acc + (double)beta * cv);
            }
        }
    }

    // ---- lifetime ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <summary>Frees every block of this device (cached or not).</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _memory.Dispose();
            _disposed = true;
        }
    }

    /// <inheritdoc />
    public override string ToString() => Name;
}
