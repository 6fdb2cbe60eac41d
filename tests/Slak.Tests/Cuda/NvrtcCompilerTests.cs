// NVRTC compilation: CUBIN and PTX for sm_80/sm_90 with a header passed by name, defines, and compile errors
// that carry the full log and the file name.
using NUnit.Framework;
using System.Text;
using Slak.Cuda.Compilation;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class NvrtcCompilerTests
{
    [SetUp]
    public void RequireNvrtc() => NvrtcTestSupport.RequireNvrtc();

    [TestCase(8, 0)]
    [TestCase(9, 0)]
    public void CompilesCubinForTheExactArchitecture(int major, int minor)
    {
        var compiler = new NvrtcCompiler(NvrtcTestSupport.Sources());
        CompiledModule module = compiler.Compile("kernels/test_scale.cu", new CompileOptions(major, minor));

        Assert.That(module.IsCubin, Is.True, module.Log);
        Assert.That(module.Architecture, Is.EqualTo($"sm_{major}{minor}"));
        // A CUBIN is an ELF image.
        Assert.That(module.Image.AsSpan(0, 4).ToArray(), Is.EqualTo(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F' }));
        Assert.That(Encoding.ASCII.GetString(module.Image), Does.Contain("scale_kernel").And.Contain("fill_kernel"));
    }

    [TestCase(8, 0)]
    [TestCase(9, 0)]
    public void CompilesPtxWhenAsked(int major, int minor)
    {
        var compiler = new NvrtcCompiler(NvrtcTestSupport.Sources());
        CompiledModule module = compiler.Compile("kernels/test_scale.cu",
            new CompileOptions(major, minor) { ForcePtx = true, Defines = ["SLAK_TEST_DEFINE=3"] });

        string ptx = Encoding.ASCII.GetString(module.Image);
        Assert.That(module.IsCubin, Is.False);
        Assert.That(module.Architecture, Is.EqualTo($"compute_{major}{minor}"));
        Assert.That(ptx, Does.Contain($".target sm_{major}{minor}"));
        Assert.That(ptx, Does.Contain(".entry scale_kernel").And.Contain(".entry fill_kernel"));
        Assert.That(module.Image[^1], Is.EqualTo(0), "PTX for cuModuleLoadData must be NUL-terminated");
    }

    [Test]
    public void FallsBackToPtxForAnArchitectureNvrtcDoesNotKnow()
    {
        var compiler = new NvrtcCompiler(NvrtcTestSupport.Sources());
        if (compiler.SupportedArchitectures.Count == 0)
        {
            Assert.Ignore("this NVRTC cannot list its architectures (older than 11.2)");
        }

        int newest = compiler.SupportedArchitectures.Max();
        var future = new CompileOptions(newest / 10 + 9, 0);
        (bool cubin, int arch) = compiler.ChooseTarget(future);
        Assert.That((cubin, arch), Is.EqualTo((false, newest)), $"NVRTC {compiler.Version} supports up to sm_{newest}");

        CompiledModule module = compiler.Compile("kernels/test_scale.cu", future);
        Assert.That(module.Architecture, Is.EqualTo($"compute_{newest}"));
    }

    [Test]
    public void CompileErrorCarriesTheFullLogAndFileName()
    {
        var sources = new KernelSources(new Dictionary<string, string>
        {
            ["kernels/broken.cu"] = "extern \"C\" __global__ void broken_kernel(float* out)\n{\n    out[0] = undefined_name;\n}\n",
        });
        var compiler = new NvrtcCompiler(sources);

        var e = Assert.Throws<NvrtcCompileException>(() => compiler.Compile("kernels/broken.cu", new CompileOptions(8, 0)));

        Assert.That(e!.FileName, Is.EqualTo("kernels/broken.cu"));
        Assert.That(e.Log, Does.Contain("undefined_name").And.Contain("kernels/broken.cu(3)"));
        Assert.That(e.Message, Does.Contain(e.Log).And.Contain("--gpu-architecture=sm_80"));
    }

    [Test]
    public void MissingHeaderIsACompileError()
    {
        var sources = new KernelSources(new Dictionary<string, string>
        {
            ["kernels/needs_header.cu"] = "#include \"not_there.cuh\"\nextern \"C\" __global__ void k(float* o) { o[0] = 1.0f; }\n",
        });
        var compiler = new NvrtcCompiler(sources);

        var e = Assert.Throws<NvrtcCompileException>(
            () => compiler.Compile("kernels/needs_header.cu", new CompileOptions(9, 0)));
        Assert.That(e!.Log, Does.Contain("not_there.cuh"));
    }

    [Test]
    public void RejectsUnknownFilesAndBadOptions()
    {
        var compiler = new NvrtcCompiler(NvrtcTestSupport.Sources());
        var unknown = Assert.Throws<ArgumentException>(() => compiler.Compile("kernels/nope.cu", new CompileOptions(8, 0)));
        Assert.That(unknown!.Message, Does.Contain("kernels/nope.cu"));

        var define = Assert.Throws<ArgumentException>(() => compiler.Compile("kernels/test_scale.cu",
            new CompileOptions(8, 0) { Defines = ["TWO WORDS"] }));
        Assert.That(define!.Message, Does.Contain("TWO WORDS"));

        var arch = Assert.Throws<ArgumentException>(() => new CompileOptions(8, 12).ToArguments(true, 80));
        Assert.That(arch!.Message, Does.Contain("8.12"));
    }

    [Test]
    public void SelfTestPassesWithWorkingBuiltins() => Assert.That(NvrtcCompiler.SelfTest(), Is.Null);

    [Test]
    public void ArgumentsNeverContainIncludePaths()
    {
        IReadOnlyList<string> args = new CompileOptions(9, 0) { PtxasVerbose = true, LineInfo = true }.ToArguments(true, 90);
        Assert.That(args, Is.EqualTo(new[] { "--gpu-architecture=sm_90", "-std=c++17", "-default-device", "-lineinfo",
                                             "-Xptxas", "-v" }));
    }
}
