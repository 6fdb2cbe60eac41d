// The NCCL row of the GPU check (`Slak.GpuCheck --nccl`, run by bench/gpu/nccl-check.sh): loads libnccl through
// Slak's binding (probed like cuBLAS), creates a one-rank communicator from a fresh unique id (what rank 0 would
// broadcast over MPI), all-reduces 2^20 floats in place on the device's compute stream and checks that a one-rank
// sum leaves every value as it was. A load-and-init smoke test; multi-GPU runs need several GPUs and mpirun.
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Slak.Cuda.Interop;
using Slak.Cuda.Runtime;

namespace Slak.GpuCheck;

/// <summary>The NCCL smoke row.</summary>
internal static class NcclSmoke
{
    /// <summary>Writes a one-row markdown table; returns 1 when the row is FAIL, 0 for ok or skip.</summary>
    public static int Run(TextWriter stdout)
    {
        stdout.WriteLine("| row | result | detail |");
        stdout.WriteLine("|---|---|---|");
        Nccl api;
        try
        {
            api = Nccl.Api;
        }
        catch (CudaLibraryNotFoundException e)
        {
            stdout.WriteLine($"| nccl one-rank all-reduce | skip | {e.Summary} |");
            return 0;
        }

        if (!GpuDevices.IsCudaAvailable(out string why))
        {
            stdout.WriteLine($"| nccl one-rank all-reduce | skip | NCCL {api.VersionString()} loads ({api.Library.Path}); no CUDA device: {why} |");
            return 0;
        }

        try
        {
            const int n = 1 << 20;
            using var device = CudaDriverDevice.Open(0);
            var values = new float[n];
            for (int i = 0; i < n; i++) values[i] = (i % 1000) * 0.25f - 100f;
            var buffer = device.Allocate((long)n * sizeof(float));
            device.CopyToDevice(MemoryMarshal.AsBytes(values.AsSpan()), buffer);
            var clock = Stopwatch.StartNew();
            nint comm = api.InitRank(1, api.NewUniqueId(), 0);
            double initMs = clock.Elapsed.TotalMilliseconds;
            try
            {
                clock.Restart();
                api.AllReduceSumInPlace(buffer.Address, n, comm, device.StreamHandle);
                device.Synchronize();
                double reduceMs = clock.Elapsed.TotalMilliseconds;
                var back = new float[n];
                device.CopyToHost(buffer, MemoryMarshal.AsBytes(back.AsSpan()));
                int bad = 0;
                for (int i = 0; i < n; i++) if (BitConverter.SingleToInt32Bits(back[i]) != BitConverter.SingleToInt32Bits(values[i])) bad++;
                string detail = string.Create(CultureInfo.InvariantCulture,
                    $"NCCL {api.VersionString()} ({api.Library.Path}) on {device.Name}: communicator {initMs:F0} ms, all-reduce of {n} floats {reduceMs:F2} ms, {bad} values changed");
                stdout.WriteLine($"| nccl one-rank all-reduce | {(bad == 0 ? "ok" : "FAIL")} | {detail} |");
                return bad == 0 ? 0 : 1;
            }
            finally
            {
                api.Destroy(comm);
                device.Free(buffer);
            }
        }
        catch (Exception e) when (e is InvalidOperationException or CudaException)
        {
            stdout.WriteLine($"| nccl one-rank all-reduce | FAIL | {e.Message.ReplaceLineEndings(" ")} |");
            return 1;
        }
    }
}
