// The on-disk kernel cache: hit/miss, key sensitivity, corrupt and truncated entries rebuilt, atomic writes,
// default folder resolution, and a real NVRTC round trip.
using NUnit.Framework;
using Slak.Cuda.Compilation;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class NvrtcKernelCacheTests
{
    private string _folder = "";

    [SetUp]
    public void CreateFolder() => _folder = NvrtcTestSupport.TempFolder();

    [TearDown]
    public void DeleteFolder()
    {
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    [Test]
    public void MissThenHit()
    {
        var cache = new KernelCache(_folder);
        int compiles = 0;
        CompiledModule Compile()
        {
            compiles++;
            return new CompiledModule("kernels/a.cu", "sm_80", true, [1, 2, 3, 4], "log text");
        }

        CompiledModule first = cache.GetOrCreate("abc123", "kernels/a.cu", Compile);
        CompiledModule second = cache.GetOrCreate("abc123", "kernels/a.cu", Compile);

        Assert.That(compiles, Is.EqualTo(1));
        Assert.That((cache.Hits, cache.Misses, cache.CorruptEntries), Is.EqualTo((1L, 1L, 0L)));
        Assert.That(second.Image, Is.EqualTo(first.Image));
        Assert.That((second.Architecture, second.IsCubin, second.Log), Is.EqualTo(("sm_80", true, "log text")));
        Assert.That(Directory.GetFiles(_folder), Is.EqualTo(new[] { cache.EntryPath("abc123") }), "no temporary files left");
    }

    [TestCase("flip")]
    [TestCase("truncate")]
    [TestCase("empty")]
    [TestCase("garbage")]
    public void CorruptEntryIsRebuilt(string damage)
    {
        var cache = new KernelCache(_folder);
        int compiles = 0;
        CompiledModule Compile()
        {
            compiles++;
            return new CompiledModule("kernels/a.cu", "compute_90", false, [7, 8, 9, 0], "");
        }

        cache.GetOrCreate("beef", "kernels/a.cu", Compile);
        string path = cache.EntryPath("beef");
        byte[] data = File.ReadAllBytes(path);
        byte[] damaged = damage switch
        {
            "flip" => [.. data[..12], (byte)(data[12] ^ 0x40), .. data[13..]],
            "truncate" => data[..(data.Length - 5)],
            "empty" => [],
            _ => "this is not a cache entry at all, just some text"u8.ToArray(),
        };
        File.WriteAllBytes(path, damaged);

        CompiledModule rebuilt = cache.GetOrCreate("beef", "kernels/a.cu", Compile);

        Assert.That(compiles, Is.EqualTo(2), damage);
        Assert.That(cache.CorruptEntries, Is.EqualTo(1), damage);
        Assert.That(rebuilt.Image, Is.EqualTo(new byte[] { 7, 8, 9, 0 }));
        Assert.That(KernelCache.Decode(File.ReadAllBytes(path), "kernels/a.cu"), Is.Not.Null, "entry rewritten intact");
    }

    [Test]
    public void KeyDependsOnEverythingThatShapesTheImage()
    {
        var s1 = new KernelSources(new Dictionary<string, string> { ["kernels/a.cu"] = "// a", ["common/h.cuh"] = "// 1" });
        var s2 = new KernelSources(new Dictionary<string, string> { ["kernels/a.cu"] = "// a", ["common/h.cuh"] = "// 2" });
        string[] args = ["--gpu-architecture=sm_80"];
        string baseKey = KernelCache.Key(s1, "kernels/a.cu", args, (11, 8), "sm_80");

        string[] variants =
        [
            KernelCache.Key(s2, "kernels/a.cu", args, (11, 8), "sm_80"),
            KernelCache.Key(s1, "kernels/b.cu", args, (11, 8), "sm_80"),
            KernelCache.Key(s1, "kernels/a.cu", [.. args, "-DX=1"], (11, 8), "sm_80"),
            KernelCache.Key(s1, "kernels/a.cu", args, (12, 4), "sm_80"),
            KernelCache.Key(s1, "kernels/a.cu", args, (11, 8), "sm_90"),
        ];

        Assert.That(baseKey, Has.Length.EqualTo(64));
        Assert.That(variants, Has.None.EqualTo(baseKey));
        Assert.That(variants.Distinct().Count(), Is.EqualTo(variants.Length));
        Assert.That(KernelCache.Key(s1, "kernels/a.cu", args, (11, 8), "sm_80"), Is.EqualTo(baseKey));
    }

    [Test]
    public void DefaultFolderFollowsEnvironment()
    {
        Dictionary<string, string> env = new() { ["HOME"] = "/home/u" };
        string? Get(string name) => env.GetValueOrDefault(name);

        Assert.That(KernelCache.DefaultDirectory(Get), Is.EqualTo("/home/u/.cache/slak/kernels"));
        env["XDG_CACHE_HOME"] = "/xdg";
        Assert.That(KernelCache.DefaultDirectory(Get), Is.EqualTo("/xdg/slak/kernels"));
        env[KernelCache.DirectoryVariable] = "/explicit";
        Assert.That(KernelCache.DefaultDirectory(Get), Is.EqualTo("/explicit"));
    }

    [Test]
    public void RealCompilationIsCachedAndRecompiledWhenOptionsChange()
    {
        NvrtcTestSupport.RequireNvrtc();
        var compiler = new NvrtcCompiler(NvrtcTestSupport.Sources());
        var cache = new KernelCache(_folder);
        var options = new CompileOptions(8, 0);

        CompiledModule first = cache.GetOrCompile(compiler, "kernels/test_scale.cu", options);
        CompiledModule again = new KernelCache(_folder).GetOrCompile(compiler, "kernels/test_scale.cu", options);
        cache.GetOrCompile(compiler, "kernels/test_scale.cu", options with { Defines = ["SLAK_X=1"] });

        Assert.That(again.Image, Is.EqualTo(first.Image));
        Assert.That((cache.Hits, cache.Misses), Is.EqualTo((0L, 2L)));
        Assert.That(Directory.GetFiles(_folder, "*.kmod"), Has.Length.EqualTo(2));
    }
}
