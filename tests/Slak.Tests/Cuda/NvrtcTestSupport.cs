// Shared helpers for the NVRTC tests: a small kernel source set with a named header, skipping (or failing, when
// SLAK_REQUIRE_NVRTC=1 as in CI) when NVRTC is absent, and temporary cache folders.
using NUnit.Framework;
using Slak.Cuda.Compilation;

namespace Slak.Tests.Cuda;

/// <summary>Helpers for tests that need NVRTC.</summary>
internal static class NvrtcTestSupport
{
    /// <summary>A header reached by its short include name, as the kernels in cuda/kernels do.</summary>
    public const string Header = """
        #pragma once
        __device__ __forceinline__ float slak_test_scale(float x, float s) { return x * s; }
        """;

    /// <summary>A kernel file with two entries, one using __launch_bounds__ and static shared memory.</summary>
    public const string ScaleKernels = """
        // Test kernels for the NVRTC tests.
        #include "slak_test.cuh"
        extern "C" __global__ void __launch_bounds__(128) scale_kernel(float* out, const float* in, float s, int n)
        {
            __shared__ float tile[128];
            int i = blockIdx.x * blockDim.x + threadIdx.x;
            tile[threadIdx.x] = i < n ? in[i] : 0.0f;
            __syncthreads();
            if (i < n) { out[i] = slak_test_scale(tile[threadIdx.x], s); }
        }
        /* extern "C" __global__ void commented_out_kernel(float* out) {} */
        extern "C" __global__ void fill_kernel(float* out, float value, int n)
        {
            int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i < n) { out[i] = value; }
        }
        """;

    /// <summary>A kernel that needs a local-memory stack frame (dynamically indexed local array).</summary>
    public const string StackKernel = """
        extern "C" __global__ void local_array_kernel(float* out, const int* idx)
        {
            float a[256];
            for (int j = 0; j < 256; j++) { a[j] = out[j * 3 + 1]; }
            out[threadIdx.x] = a[idx[threadIdx.x]];
        }
        """;

    /// <summary>Source set: kernels/test_scale.cu + common/slak_test.cuh (+ optionally the stack kernel).</summary>
    public static KernelSources Sources(bool withStackKernel = false)
    {
        var files = new Dictionary<string, string>
        {
            ["kernels/test_scale.cu"] = ScaleKernels,
            ["common/slak_test.cuh"] = Header,
        };
        if (withStackKernel)
        {
            files["kernels/test_stack.cu"] = StackKernel;
        }

        return new KernelSources(files);
    }

    /// <summary>Ignores the test when NVRTC cannot be loaded, or fails it when SLAK_REQUIRE_NVRTC=1.</summary>
    public static void RequireNvrtc()
    {
        if (NvrtcCompiler.IsAvailable(out string reason))
        {
            return;
        }

        if (Environment.GetEnvironmentVariable("SLAK_REQUIRE_NVRTC") == "1")
        {
            Assert.Fail($"NVRTC is required (SLAK_REQUIRE_NVRTC=1) but unavailable: {reason}");
        }

        Assert.Ignore($"NVRTC unavailable: {reason}");
    }

    /// <summary>A fresh empty folder under the system temp folder.</summary>
    public static string TempFolder()
    {
        string path = Path.Combine(Path.GetTempPath(), "slak-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>The repository root (the folder holding Slak.Cuda.sln), or null when not found.</summary>
    public static string? RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Slak.Cuda.sln")))
            {
                return dir.FullName;
            }
        }

        return null;
    }
}
