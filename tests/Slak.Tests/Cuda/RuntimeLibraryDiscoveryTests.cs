// Library discovery: a library that cannot be found produces an exception listing every probe (user folders,
// the loader's search, the standard folders), a present-but-broken file reports its loader error, and
// SLAK_CUDA_LIBRARY_PATH wins over the system search.
using NUnit.Framework;
using Slak.Cuda.Interop;

namespace Slak.Tests.Cuda;

[TestFixture]
public sealed class RuntimeLibraryDiscoveryTests
{
    private string _folder = "";

    [SetUp]
    public void CreateFolder() => _folder = NvrtcTestSupport.TempFolder();

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    [Test]
    public void MissingLibraryReportsEveryProbe()
    {
        const string name = "libslak_no_such_library.so.7";
        File.WriteAllText(Path.Combine(_folder, name), "not an ELF file");
        Dictionary<string, string> env = new()
        {
            [NativeLibraryProbe.LibraryPathVariable] = $"/nonexistent/slak-bogus{Path.PathSeparator}{_folder}",
            ["CUDA_PATH"] = "/nonexistent/cuda-path",
        };

        var e = Assert.Throws<CudaLibraryNotFoundException>(
            () => NativeLibraryProbe.Load("Test library", [name], env.GetValueOrDefault));

        string message = e!.Message;
        Assert.That(message, Does.Contain("Test library").And.Contain(NativeLibraryProbe.LibraryPathVariable));
        Assert.That(message, Does.Contain("/nonexistent/slak-bogus (SLAK_CUDA_LIBRARY_PATH): folder does not exist"));
        Assert.That(message, Does.Contain(Path.Combine(_folder, name) + " (SLAK_CUDA_LIBRARY_PATH): "),
            "a present but unloadable file reports the loader's error");
        Assert.That(message, Does.Contain($"{name} (system search): "));
        Assert.That(message, Does.Contain("/nonexistent/cuda-path/lib64").And.Contain("/usr/local/cuda/lib64")
            .And.Contain("/usr/lib/x86_64-linux-gnu").And.Contain("/usr/lib/wsl/lib"));
        Assert.That(e.Probes, Has.Count.GreaterThanOrEqualTo(7));
        Assert.That(e.Probes.All(p => message.Contains(p, StringComparison.Ordinal)), Is.True);
        Assert.That(e.Summary, Does.Not.Contain("\n"));
    }

    [Test]
    public void UnsetLibraryPathIsRecordedToo()
    {
        var e = Assert.Throws<CudaLibraryNotFoundException>(() => NativeLibraryProbe.Load(
            "Test library", ["libslak_no_such_library.so.7"], _ => null));
        Assert.That(e!.Probes[0], Is.EqualTo("SLAK_CUDA_LIBRARY_PATH: not set"));
    }

    [Test]
    public void LibraryPathWinsOverTheSystemSearch()
    {
        NvrtcTestSupport.RequireNvrtc();
        string path = Nvrtc.Api.Library.Path;
        string file = Path.GetFileName(path);
        string? folder = Path.IsPathRooted(path) ? Path.GetDirectoryName(path) : FindOnDisk(file);
        if (folder is null)
        {
            Assert.Ignore($"cannot locate {file} on disk to test the folder override");
        }

        LoadedNativeLibrary lib = NativeLibraryProbe.Load("NVRTC", [file],
            n => n == NativeLibraryProbe.LibraryPathVariable ? folder : null);

        Assert.That(lib.Path, Is.EqualTo(Path.Combine(folder, file)));
        Assert.That(lib.Probes, Has.Count.EqualTo(1), string.Join("; ", lib.Probes));
        Assert.That(lib.Require("nvrtcVersion"), Is.Not.EqualTo(nint.Zero));
        var missing = Assert.Throws<EntryPointNotFoundException>(() => lib.Require("nvrtcNoSuchFunction"));
        Assert.That(missing!.Message, Does.Contain("nvrtcNoSuchFunction").And.Contain(lib.Path));
        Assert.That(lib.Optional("nvrtcNoSuchFunction"), Is.EqualTo(nint.Zero));
    }

    [Test]
    public void CandidateNamesAreVersionedFirst()
    {
        if (OperatingSystem.IsWindows())
        {
            Assert.Ignore("Linux sonames only");
        }

        Assert.That(CudaLibraryNames.Candidates(CudaLibraryKind.Driver), Is.EqualTo(new[] { "libcuda.so.1", "libcuda.so" }));
        Assert.That(CudaLibraryNames.Candidates(CudaLibraryKind.Nvrtc),
            Is.EqualTo(new[] { "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so" }));
        Assert.That(CudaLibraryNames.Candidates(CudaLibraryKind.Cublas),
            Is.EqualTo(new[] { "libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so" }));
    }

    [Test]
    public void PythonWheelFoldersAreFound()
    {
        string lib = Path.Combine(_folder, "lib", "python3.11", "site-packages", "nvidia", "cuda_nvrtc", "lib");
        Directory.CreateDirectory(lib);
        IReadOnlyList<string> folders = NativeLibraryProbe.PythonWheelFolders(n => n == "VIRTUAL_ENV" ? _folder : null);
        Assert.That(folders, Does.Contain(lib));
    }

    private static string? FindOnDisk(string file) =>
        new[] { "/usr/lib/x86_64-linux-gnu", "/usr/local/cuda/lib64" }.FirstOrDefault(d => File.Exists(Path.Combine(d, file)));
}
