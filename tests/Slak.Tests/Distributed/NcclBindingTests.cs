// The NCCL binding where NCCL is absent (this CI machine): the probe names every place it looked and the file names,
// and `slak info` reports it in one line instead of failing. With NCCL installed the first test is skipped.
using NUnit.Framework;
using Slak.Cuda.Interop;
using Slak.Cuda.Runtime;

namespace Slak.Tests.Distributed;

public class NcclBindingTests
{
    [Test]
    public void MissingNccl_IsReportedWithEveryProbe()
    {
        string empty = Path.Combine(Path.GetTempPath(), "slak-no-nccl-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(empty);
        try
        {
            string? Env(string name) => name switch
            {
                NativeLibraryProbe.LibraryPathVariable => empty, "CUDA_PATH" => Path.Combine(empty, "cuda"), "HOME" => empty, _ => null,
            };
            CudaLibraryNotFoundException? e = null;
            try { using var _ = new Holder(Nccl.Load(Env)); }
            catch (CudaLibraryNotFoundException x) { e = x; }
            if (e is null) Assert.Ignore("NCCL is installed on this machine: the not-found path cannot be shown here");
            Assert.That(e!.Library, Is.EqualTo("NCCL"));
            Assert.That(e.Summary, Does.Contain("NCCL library not found").And.Contain("libnccl.so.2"));
            Assert.That(e.Message, Does.Contain(empty).And.Contain(Path.Combine(empty, "cuda", "lib64")), "the user folder and CUDA_PATH were probed");
            Assert.That(NcclInfo.Describe(), Does.Contain("NCCL library not found"));
        }
        finally
        {
            Directory.Delete(empty, recursive: true);
        }
    }

    [Test]
    public void UniqueIdIsTheHeadersSize() =>
        Assert.That(System.Runtime.CompilerServices.Unsafe.SizeOf<NcclUniqueId>(), Is.EqualTo(128));

    private sealed class Holder(LoadedNativeLibrary lib) : IDisposable
    {
        public void Dispose() => System.Runtime.InteropServices.NativeLibrary.Free(lib.Handle);
    }
}
