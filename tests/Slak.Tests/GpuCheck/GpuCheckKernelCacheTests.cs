// The prebuilt kernel folder carried to the GPU machine (bench/gpu/prepare.sh): entries are found by the NVRTC version
// recorded in its manifest, not by the NVRTC loaded at run time, only for the same sources and architecture, and they
// are served before the ordinary cache (nothing compiled).
using NUnit.Framework;
using Slak.Cuda.Compilation;
using Slak.Tests.Cuda;

namespace Slak.Tests.GpuCheck;

[TestFixture]
public class GpuCheckKernelCacheTests
{
    [Test]
    public void BuiltFolderServesEveryKernelFileWithoutCompiling()
    {
        NvrtcTestSupport.RequireNvrtc();
        string dir = NvrtcTestSupport.TempFolder();
        var sources = NvrtcTestSupport.Sources(withStackKernel: true);
        var lines = PrebuiltKernelCache.Build(dir, sources, 80);
        Assert.That(lines, Has.Count.EqualTo(2));
        var prebuilt = PrebuiltKernelCache.Open(dir);
        Assert.That(prebuilt.SourcesHash, Is.EqualTo(sources.ContentHash));
        Assert.That(prebuilt.Architectures, Is.EqualTo(new[] { "sm_80" }));

        var cache = new KernelCache(NvrtcTestSupport.TempFolder()) { Prebuilt = prebuilt };
        var compiler = new NvrtcCompiler(sources);
        foreach (string file in sources.KernelFiles)
        {
            var module = cache.GetOrCompile(compiler, file, new CompileOptions(8, 0));
            Assert.That((module.IsCubin, module.Architecture, module.File), Is.EqualTo((true, "sm_80", file)));
        }

        Assert.That((cache.Misses, cache.Hits, prebuilt.Hits), Is.EqualTo((0L, 0L, 2L)), "served from the prebuilt folder only");
        Assert.That(Directory.Exists(cache.Directory) ? Directory.GetFiles(cache.Directory) : [], Is.Empty);
    }

    [Test]
    public void LookupUsesTheRecordedNvrtcVersionNotTheLoadedOne()
    {
        // The GPU machine loads a newer NVRTC than the one that built the folder: simulate it by recording another
        // version (13.0) in the manifest and keying the entry with it; the local compiler must still be served it.
        NvrtcTestSupport.RequireNvrtc();
        var sources = NvrtcTestSupport.Sources();
        var compiler = new NvrtcCompiler(sources);
        var options = new CompileOptions(8, 0);
        string file = sources.KernelFiles[0];
        var module = compiler.Compile(file, options);
        string dir = NvrtcTestSupport.TempFolder();
        File.WriteAllBytes(Path.Combine(dir, PrebuiltKernelCache.Key(sources, file, options, (13, 0)) + ".kmod"), KernelCache.Encode(module));
        File.WriteAllText(Path.Combine(dir, PrebuiltKernelCache.ManifestName), $"nvrtc=13.0\nsources={sources.ContentHash}\narch=sm_80\n");
        var prebuilt = PrebuiltKernelCache.Open(dir);
        Assert.That(prebuilt.NvrtcVersion, Is.EqualTo((13, 0)));
        Assert.That(prebuilt.TryGet(sources, file, options)?.Image, Is.EqualTo(module.Image));
        Assert.That(prebuilt.TryGet(sources, file, new CompileOptions(9, 0)), Is.Null, "another architecture");
        Assert.That(prebuilt.TryGet(sources, file, options with { Defines = ["X=1"] }), Is.Null, "other options");
        var edited = new KernelSources(sources.Files.ToDictionary(kv => kv.Key, kv => kv.Value + "\n// edited\n"));
        Assert.That(prebuilt.TryGet(edited, file, options), Is.Null, "other sources");
    }

    [Test]
    public void MissingOrMalformedManifestIsAClearError()
    {
        string dir = NvrtcTestSupport.TempFolder();
        Assert.That(() => PrebuiltKernelCache.Open(dir),
            Throws.InvalidOperationException.With.Message.Contains(PrebuiltKernelCache.ManifestName).And.Message.Contains("--build-kernel-cache"));
        File.WriteAllText(Path.Combine(dir, PrebuiltKernelCache.ManifestName), "nvrtc=eleven\nsources=abc\n");
        Assert.That(() => PrebuiltKernelCache.Open(dir), Throws.InvalidOperationException.With.Message.Contains("'eleven'"));
        Assert.That(PrebuiltKernelCache.FromEnvironment(_ => null), Is.Null);
        Assert.That(() => PrebuiltKernelCache.FromEnvironment(v => v == PrebuiltKernelCache.DirectoryVariable ? dir : null),
            Throws.InvalidOperationException);
    }
}
