// bf16 activation storage on the CUDA backend (CudaStorage.StoreAsBf16, CudaBackend.Bf16.cs) on cuda-emu:
//   - a stored activation is held as 16-bit values: the emulator's allocator counts exactly half the float32 bytes
//     (a size where its granule does not round), its values are the bf16 rounding of the float32 ones, reading it
//     to the host leaves it 16-bit, and a float32 kernel that writes it widens it back (exactly);
//   - the nano SLaK's forward + backward under bf16 with the 16-bit storage equals the same step with every stored
//     activation kept float32 (rounded in place: the rounding path's storage) bit for bit, in the loss and every
//     parameter gradient, while the forward keeps fewer bytes on the device; no parameter (master weight) is ever
//     held as 16-bit; and the eval-mode logits (the inference sum) are bit-identical the same way.
using NUnit.Framework;
using Slak.Backends;
using Slak.Backends.Cuda;
using Slak.Cuda.Runtime;
using Slak.Models;
using Slak.NN;
using Slak.Tests.Support;

namespace Slak.Tests.Precision;

public sealed class CudaBf16StorageTests
{
    private static CudaBackend Emu()
    {
        if (!CudaBackend.IsAvailable(Device.CudaEmu, out string why)) Assert.Ignore($"cuda-emu unavailable: {why}");
        return (CudaBackend)BackendRegistry.For(Device.CudaEmu);
    }

    private static uint Bits(float v) => BitConverter.SingleToUInt32Bits(v);

    [Test]
    public void AStoredActivationIsHeldInHalfTheBytesWithItsBf16Values()
    {
        var cuda = Emu();
        var rng = TestRandom.ForCurrentTest();
        const int count = 1 << 16; // 256 KiB float32, 128 KiB bf16: multiples of the emulator's granules
        // Tensors other tests left to the garbage collector return their memory at the allocator's next call: let that
        // happen before measuring.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        using (Tensor.Zeros([1], Device.CudaEmu)) { }
        var values = rng.NormalArray(count, 3.0);
        var t = Tensor.FromArray(values, [count], Device.CudaEmu);
        var storage = (CudaStorage)t.Storage;
        long before = cuda.Gpu.MemoryStats.InUseBytes;
        ((IBf16KernelBackend)cuda).StoreBf16(t);
        long after = cuda.Gpu.MemoryStats.InUseBytes;
        Assert.That(storage.IsBf16, Is.True);
        Assert.That(before - after, Is.EqualTo(count * sizeof(ushort)), "bytes the 16-bit block saves");

        var got = t.ToArray();
        Assert.That(storage.IsBf16, Is.True, "reading to the host keeps the 16-bit block");
        for (int i = 0; i < count; i++)
            Assert.That(Bits(got[i]), Is.EqualTo(Bits(ReducedFloat.RoundBf16(values[i]))), rng.Ctx($"[{i}] of {values[i]:R}"));

        // A float32 reader through Bf16Backend gets a widened copy; the block stays 16-bit.
        var doubled = Tensor.Empty([count], Device.CudaEmu);
        Bf16Backend.Wrap(cuda).Scale(t, 2f, doubled);
        Assert.That(storage.IsBf16, Is.True, "a read through Bf16Backend keeps the 16-bit block");
        var d = doubled.ToArray();
        for (int i = 0; i < count; i++) Assert.That(d[i], Is.EqualTo(2f * got[i]), rng.Ctx($"2 x [{i}]"));

        // A float32 kernel writing it directly widens it back for good, exactly.
        long held = cuda.Gpu.MemoryStats.InUseBytes;
        cuda.AddScaled(t, doubled, 0f);
        Assert.That(storage.IsBf16, Is.False, "a float32 writer widens the block");
        Assert.That(cuda.Gpu.MemoryStats.InUseBytes - held, Is.EqualTo(count * sizeof(ushort)),
                    "the widened block (float32) replaced the 16-bit one");
        var widened = t.ToArray();
        for (int i = 0; i < count; i++) Assert.That(Bits(widened[i]), Is.EqualTo(Bits(got[i])), rng.Ctx($"widened [{i}]"));
        t.Dispose();
        doubled.Dispose();
    }

    // One forward + backward of the nano SLaK under bf16 on cuda-emu: the loss, every parameter gradient, and the bytes
    // the forward kept on the device.
    private static (float Loss, Dictionary<string, float[]> Grads, long ForwardBytes) Step(CudaBackend cuda, SlakModel model,
                                                                                          Tensor x, int[] labels)
    {
        model.ZeroGrad();
        float loss;
        long forwardBytes;
        GC.Collect();
        GC.WaitForPendingFinalizers();
        using (Tensor.Zeros([1], Device.CudaEmu)) { } // drains the allocator's orphan queue before measuring
        using (TensorScope.Begin())
        using (MixedPrecision.Use(Slak.Precision.Bf16))
        {
            long before = cuda.Gpu.MemoryStats.InUseBytes;
            var logits = model.Forward(x);
            forwardBytes = cuda.Gpu.MemoryStats.InUseBytes - before;
            var l = F.CrossEntropy(logits, labels);
            loss = l.Item();
            l.Backward();
        }
        var grads = model.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor.Grad!.ToArray());
        foreach (var (name, p) in model.NamedParameters())
            Assert.That(((CudaStorage)p.Storage).IsBf16, Is.False, $"parameter {name} stays a float32 master");
        return (loss, grads, forwardBytes);
    }

    [Test]
    public void NanoStepWith16BitStorageEqualsTheFloat32StorageBitForBit()
    {
        var cuda = Emu();
        var rng = TestRandom.ForCurrentTest();
        var preset = ModelPresets.Get("slak_nano");
        const int n = 2;
        int size = preset.InputSize;
        var model = new SlakModel(preset.Config, ModuleInit.FromRandom(new SlakRandom((ulong)rng.Seed), Device.CudaEmu));
        model.Train();
        var x = Tensor.FromArray(rng.NormalArray(n * preset.Config.InChans * size * size), [n, preset.Config.InChans, size, size],
                                 Device.CudaEmu);
        int[] labels = [rng.Int(0, preset.Config.NumClasses - 1), rng.Int(0, preset.Config.NumClasses - 1)];

        var held = Step(cuda, model, x, labels);
        (float Loss, Dictionary<string, float[]> Grads, long ForwardBytes) wide;
        CudaBackend.HoldBf16Storage = false;
        try
        {
            wide = Step(cuda, model, x, labels);
        }
        finally
        {
            CudaBackend.HoldBf16Storage = true;
        }
        TestContext.Out.WriteLine($"forward keeps {held.ForwardBytes} B with 16-bit storage, {wide.ForwardBytes} B without; " +
                                  $"loss {held.Loss:R}");
        Assert.That(held.ForwardBytes, Is.LessThan(wide.ForwardBytes * 0.75), rng.Ctx("bytes the bf16 forward keeps"));
        Assert.That(Bits(held.Loss), Is.EqualTo(Bits(wide.Loss)), rng.Ctx($"loss {held.Loss:R} vs {wide.Loss:R}"));
        foreach (var (name, g) in held.Grads)
        {
            var w = wide.Grads[name];
            for (int i = 0; i < g.Length; i++)
                Assert.That(Bits(g[i]), Is.EqualTo(Bits(w[i])), rng.Ctx($"grad {name}[{i}]: {g[i]:R} vs {w[i]:R}"));
        }

        // Inference (the depthwise inference sum writes its 16-bit output block): the logits too.
        model.Eval();
        float[] Logits()
        {
            using var scope = TensorScope.Begin();
            using var precision = MixedPrecision.Use(Slak.Precision.Bf16);
            return model.Forward(x).ToArray();
        }
        var heldLogits = Logits();
        float[] wideLogits;
        CudaBackend.HoldBf16Storage = false;
        try
        {
            wideLogits = Logits();
        }
        finally
        {
            CudaBackend.HoldBf16Storage = true;
        }
        for (int i = 0; i < heldLogits.Length; i++)
            Assert.That(Bits(heldLogits[i]), Is.EqualTo(Bits(wideLogits[i])), rng.Ctx($"eval logits[{i}]"));
    }
}
