// `slak info`: what this machine offers: CPU threads and SIMD width, the CUDA driver / NVRTC / cuBLAS versions and
// devices (or, in one line, why CUDA is unavailable), the kernel cache folder, and whether the host emulator loads.
using System.CommandLine;
using System.Runtime.Intrinsics;
using Slak.Backends.Cpu;
using Slak.Backends.Cuda;
using Slak.Cuda.Runtime;

namespace Slak.Cli.Commands;

/// <summary>The info verb.</summary>
internal sealed class InfoCommand : ICliCommand
{
    /// <inheritdoc />
    public int Order => 90;

    /// <inheritdoc />
    public Command Build()
    {
        var cmd = new Command("info", "CPU, CUDA (driver, NVRTC, cuBLAS, NCCL, devices), MPI and emulator status");
        cmd.SetAction(_ =>
        {
            string simd = Vector512.IsHardwareAccelerated ? "AVX-512" : Vector256.IsHardwareAccelerated ? "AVX2" : "128-bit";
            Console.WriteLine($"CPU:          {Environment.ProcessorCount} logical cores, {CpuParallel.Threads} threads used, {simd}");
            Console.Write(CudaInfo.Describe());
            Console.WriteLine($"precision:    default {PrecisionNames.Name(PrecisionNames.DefaultFor(Device.Cuda0))} on cuda, "
                + $"{PrecisionNames.Name(PrecisionNames.DefaultFor(Device.Cpu))} on cpu and cuda-emu (--precision {string.Join("|", PrecisionNames.All)}); "
                + $"CPU bf16 dot product (AVX512-BF16): {(Slak.Backends.Cpu.CpuBf16Gemm.IsSupported ? "yes" : "no")}");
            Console.WriteLine($"NCCL:         {NcclInfo.Describe()}");
            Console.WriteLine($"MPI:          {Slak.Distributed.MpiCollectives.DescribeLibrary()}");
            Console.WriteLine(CudaBackend.IsAvailable(Device.CudaEmu, out string why)
                ? "cuda-emu:     available (host emulator of the CUDA kernels)"
                : $"cuda-emu:     unavailable: {why}");
            return 0;
        });
        return cmd;
    }
}
