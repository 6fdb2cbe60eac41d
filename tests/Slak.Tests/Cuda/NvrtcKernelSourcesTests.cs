// KernelSources: kernel discovery by `extern "C" __global__`, header include names, duplicate kernels, and that
// the embedded resources are exactly the cuda/ files on disk.
using NUnit.Framework;
using Slak.Cuda.Compilation;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class NvrtcKernelSourcesTests
{
    [Test]
    public void FindsKernelsAndSkipsCommentsAndDeviceFunctions()
    {
        const string source = """
            __device__ float helper(float x) { return x; }
            extern "C" __global__ void plain_kernel(float* o) {}
            extern "C" __global__ void __launch_bounds__(256, 2) bounded_kernel(float* o) {}
            extern "C" __global__ __launch_bounds__(128) void bounds_first_kernel(float* o) {}
            extern  "C"  __global__
            void
            split_kernel (float* o) {}
            // extern "C" __global__ void line_comment_kernel(float* o) {}
            /* extern "C" __global__ void block_comment_kernel(float* o) {} */
            __global__ void mangled_kernel(float* o) {}
            """;

        Assert.That(KernelSources.FindKernelNames(source),
            Is.EqualTo(new[] { "plain_kernel", "bounded_kernel", "bounds_first_kernel", "split_kernel" }));
    }

    [Test]
    public void MapsKernelsToFilesAndOffersHeadersUnderEveryIncludeName()
    {
        var sources = new KernelSources(new Dictionary<string, string>
        {
            ["kernels/a.cu"] = "extern \"C\" __global__ void a_kernel(float* o) {}",
            ["kernels/sub/b.cu"] = "extern \"C\" __global__ void b_kernel(float* o) {}\nextern \"C\" __global__ void c_kernel(float* o) {}",
            ["common/slak_common.cuh"] = "// common",
            ["include/slak/slak_params.h"] = "// params",
        });

        Assert.That(sources.KernelFiles, Is.EqualTo(new[] { "kernels/a.cu", "kernels/sub/b.cu" }));
        Assert.That(sources.FileOfKernel("c_kernel"), Is.EqualTo("kernels/sub/b.cu"));
        Assert.That(sources.KernelsInFile("kernels/sub/b.cu"), Is.EqualTo(new[] { "b_kernel", "c_kernel" }));
        Assert.That(sources.Headers().Select(h => h.IncludeName), Is.EquivalentTo(new[]
        {
            "common/slak_common.cuh", "slak_common.cuh", "../common/slak_common.cuh",
            "include/slak/slak_params.h", "slak/slak_params.h", "../include/slak/slak_params.h",
        }));

        var e = Assert.Throws<ArgumentException>(() => sources.FileOfKernel("missing_kernel"));
        Assert.That(e!.Message, Does.Contain("missing_kernel").And.Contain("a_kernel"));
    }

    [Test]
    public void RejectsDuplicateKernelsAndEscapingPaths()
    {
        var dup = Assert.Throws<ArgumentException>(() => new KernelSources(new Dictionary<string, string>
        {
            ["kernels/a.cu"] = "extern \"C\" __global__ void same_kernel(float* o) {}",
            ["kernels/b.cu"] = "extern \"C\" __global__ void same_kernel(float* o) {}",
        }));
        Assert.That(dup!.Message, Does.Contain("same_kernel").And.Contain("kernels/a.cu").And.Contain("kernels/b.cu"));

        var escape = Assert.Throws<ArgumentException>(
            () => new KernelSources(new Dictionary<string, string> { ["../secret.cu"] = "" }));
        Assert.That(escape!.Message, Does.Contain("../secret.cu"));
    }

    [Test]
    public void ContentHashChangesWithAnyText()
    {
        var a = new KernelSources(new Dictionary<string, string> { ["common/x.cuh"] = "int x;" });
        var b = new KernelSources(new Dictionary<string, string> { ["common/x.cuh"] = "int y;" });
        var c = new KernelSources(new Dictionary<string, string> { ["common/x.cuh"] = "int x;" });
        Assert.That(a.ContentHash, Is.Not.EqualTo(b.ContentHash));
        Assert.That(a.ContentHash, Is.EqualTo(c.ContentHash));
    }

    [Test]
    public void EmbeddedResourcesAreExactlyTheCudaFilesOnDisk()
    {
        string? root = NvrtcTestSupport.RepositoryRoot();
        if (root is null)
        {
            Assert.Ignore("repository root (Slak.Cuda.sln) not found above the test folder");
        }

        string cuda = Path.Combine(root, "cuda");
        KernelSources onDisk = Directory.Exists(cuda)
            ? KernelSources.FromDirectory(cuda)
            : new KernelSources(new Dictionary<string, string>());
        KernelSources embedded = KernelSources.Embedded;

        Assert.That(embedded.Files.Keys, Is.EqualTo(onDisk.Files.Keys), "embedded kernel resources vs cuda/ on disk");
        Assert.That(embedded.ContentHash, Is.EqualTo(onDisk.ContentHash), "embedded texts differ from cuda/ (stale build?)");
        TestContext.Out.WriteLine($"embedded: {embedded.KernelFiles.Count} kernel files, {embedded.KernelToFile.Count} kernels");
    }
}
