// The public kernel entry point of the dwconv family (DecomposedDwConv on DeviceBuffer<float>), on cuda-emu:
//   - parity: forward, inference sum, input gradient and weight gradients against the CPU backend on the same data
//     (a masked branch included), outputs poisoned with NaN before every call;
//   - no crash on bad arguments: every entry point is swept with nulls, disposed buffers, short and long buffers,
//     buffers of another device, wrong branch counts, even kernel sizes and negative sizes, and must throw an
//     ArgumentException or ObjectDisposedException naming the argument (never reach a kernel);
//   - DeviceBuffer<T>: round trip, length-checked copies, use after Dispose.
using NUnit.Framework;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using Slak.Tests.Support;

namespace Slak.Tests.Cuda;

public sealed class DecomposedDwConvApiTests : KernelApiFixture
{
    private static readonly DwConvShape Shape = new(2, 3, 9, 7);
    private static readonly (int Kh, int Kw)[] Kernels = [(7, 3), (3, 7), (3, 3)];

    [Test]
    public void KernelsOnDeviceBuffersMatchTheCpuBackend()
    {
        int nb = Kernels.Length;
        var x = Rng.NormalArray(Shape.Elements);
        var ws = Kernels.Select(k => Rng.NormalArray(Shape.C * k.Kh * k.Kw, 0.3)).ToArray();
        var mask0 = Rng.MaskArray(Shape.C * Kernels[0].Kh * Kernels[0].Kw, 0.6);
        var dys = Kernels.Select(_ => Rng.NormalArray(Shape.Elements)).ToArray();

        // CPU reference through the backend contract.
        int[] s = [Shape.N, Shape.C, Shape.H, Shape.W];
        var cx = Tensor.FromArray(x, s, Device.Cpu);
        var cw = Kernels.Select((k, b) => Tensor.FromArray(ws[b], [Shape.C, 1, k.Kh, k.Kw], Device.Cpu)).ToArray();
        var cm = new Tensor?[] { Tensor.FromArray(mask0, [Shape.C, 1, Kernels[0].Kh, Kernels[0].Kw], Device.Cpu), null, null };
        var cys = Kernels.Select(_ => Tensor.Empty(s, Device.Cpu)).ToArray();
        var be = cx.Backend;
        be.DecomposedDwConvForward(cx, cw, cm, cys);
        var csum = Tensor.Empty(s, Device.Cpu);
        be.DecomposedDwConvForwardSum(cx, cw, cm, csum);
        var cdys = dys.Select(d => Tensor.FromArray(d, s, Device.Cpu)).ToArray();
        var cdx = Tensor.Empty(s, Device.Cpu);
        be.DecomposedDwConvBackwardData(cdys, cw, cm, cdx);
        var cdws = Kernels.Select(k => Tensor.Empty([Shape.C, 1, k.Kh, k.Kw], Device.Cpu)).ToArray();
        be.DecomposedDwConvBackwardFilter(cx, cdys, cm, cdws);

        using var gx = Buf(x);
        var gw = ws.Select(Buf).ToArray();
        using var gm = Buf(mask0);
        var branches = Kernels.Select((k, b) => new DwConvBranch(gw[b], b == 0 ? gm : null, k.Kh, k.Kw)).ToArray();
        var gys = Kernels.Select(_ => Poisoned(Shape.Elements)).ToArray();
        DecomposedDwConv.Forward(Dev, Shape, gx, branches, gys);
        using var gsum = Poisoned(Shape.Elements);
        DecomposedDwConv.ForwardSum(Dev, Shape, gx, branches, gsum);
        var gdys = dys.Select(Buf).ToArray();
        using var gdx = Poisoned(Shape.Elements);
        DecomposedDwConv.BackwardData(Dev, Shape, gdys, branches, gdx);
        var gdws = Kernels.Select(k => Poisoned((long)Shape.C * k.Kh * k.Kw)).ToArray();
        DecomposedDwConv.BackwardFilter(Dev, Shape, gx, gdys, branches, gdws);

        string ctx(string what) => Rng.Ctx($"{what}, shape {Shape}");
        for (int b = 0; b < nb; b++)
        {
            Expect.AllClose(gys[b].ToArray(), cys[b].ToArray().Select(v => (double)v).ToArray(), 1e-5, 1e-5, ctx($"forward branch {b}"));
            Expect.AllClose(gdws[b].ToArray(), cdws[b].ToArray().Select(v => (double)v).ToArray(), 1e-4, 1e-5, ctx($"weight gradient {b}"));
        }
        Expect.AllClose(gsum.ToArray(), csum.ToArray().Select(v => (double)v).ToArray(), 1e-5, 1e-5, ctx("inference sum"));
        Expect.AllClose(gdx.ToArray(), cdx.ToArray().Select(v => (double)v).ToArray(), 1e-5, 1e-5, ctx("input gradient"));
        var dw0 = gdws[0].ToArray();
        Assert.That(Enumerable.Range(0, dw0.Length).All(i => mask0[i] != 0f || dw0[i] == 0f), Is.True, ctx("pruned taps get exactly 0"));
        foreach (var d in gw.Concat(gys).Concat(gdys).Concat(gdws)) d.Dispose();
    }

    /// <summary>Valid arguments for every entry point, which each sweep case breaks in one place.</summary>
    private sealed class Args
    {
        public GpuDevice? Device;
        public DwConvShape Shape;
        public DeviceBuffer<float>? X;
        public List<DwConvBranch?> Branches = [];
        public List<DeviceBuffer<float>?> Outs = [];
        public List<DeviceBuffer<float>?> Dws = [];
        public DeviceBuffer<float>? Y;
    }

    private Args Valid()
    {
        var a = new Args { Device = Dev, Shape = Shape, X = Buf(new float[Shape.Elements]), Y = Buf(new float[Shape.Elements]) };
        foreach (var (kh, kw) in Kernels)
        {
            a.Branches.Add(new DwConvBranch(Buf(new float[Shape.C * kh * kw]), Buf(new float[Shape.C * kh * kw]), kh, kw));
            a.Outs.Add(Buf(new float[Shape.Elements]));
            a.Dws.Add(Buf(new float[Shape.C * kh * kw]));
        }
        return a;
    }

    private static readonly string[] EntryPoints = ["Forward", "ForwardSum", "BackwardData", "BackwardFilter", "Plan"];

    private static void Call(string entry, Args a)
    {
        var br = a.Branches.Select(b => b!).ToList();
        var outs = a.Outs.Select(b => b!).ToList();
        switch (entry)
        {
            case "Forward": DecomposedDwConv.Forward(a.Device!, a.Shape, a.X!, br, outs); break;
            case "ForwardSum": DecomposedDwConv.ForwardSum(a.Device!, a.Shape, a.X!, br, a.Y!); break;
            case "BackwardData": DecomposedDwConv.BackwardData(a.Device!, a.Shape, outs, br, a.Y!); break;
            case "BackwardFilter": DecomposedDwConv.BackwardFilter(a.Device!, a.Shape, a.X!, outs, br, a.Dws.Select(b => b!).ToList()); break;
            case "Plan": DecomposedDwConv.Plan(a.Device!, a.Shape, br.Select(b => (b.Kh, b.Kw)).ToList()); break;
            default: throw new ArgumentOutOfRangeException(nameof(entry));
        }
    }

    /// <summary>(name, breaks the arguments, entry points the break applies to).</summary>
    private IEnumerable<(string Name, Action<Args> Break, string[] Applies)> Breakers()
    {
        string[] all = EntryPoints, buffers = ["Forward", "ForwardSum", "BackwardData", "BackwardFilter"];
        yield return ("null device", a => a.Device = null, all);
        yield return ("negative size", a => a.Shape = Shape with { H = -1 }, all);
        yield return ("even kernel", a => a.Branches[1] = a.Branches[1]! with { Kh = 4 }, all);
        yield return ("zero kernel", a => a.Branches[2] = a.Branches[2]! with { Kw = 0 }, all);
        yield return ("no branches", a => { a.Branches.Clear(); }, all);
        yield return ("null x", a => a.X = null, ["Forward", "ForwardSum", "BackwardFilter"]);
        yield return ("disposed x", a => a.X!.Dispose(), ["Forward", "ForwardSum", "BackwardFilter"]);
        yield return ("short x", a => a.X = Buf(new float[Shape.Elements - 1]), ["Forward", "ForwardSum", "BackwardFilter"]);
        yield return ("x on another device", a => a.X = DeviceBuffer<float>.FromSpan(Other, new float[Shape.Elements]), ["Forward", "ForwardSum", "BackwardFilter"]);
        yield return ("null y", a => a.Y = null, ["ForwardSum", "BackwardData"]);
        yield return ("long y", a => a.Y = Buf(new float[Shape.Elements + 1]), ["ForwardSum", "BackwardData"]);
        yield return ("disposed y", a => a.Y!.Dispose(), ["ForwardSum", "BackwardData"]);
        yield return ("null branch", a => a.Branches[0] = null, buffers);
        yield return ("null weight", a => a.Branches[0] = a.Branches[0]! with { Weight = null! }, buffers);
        yield return ("short weight", a => a.Branches[1] = a.Branches[1]! with { Weight = Buf(new float[3]) }, buffers);
        yield return ("disposed mask", a => a.Branches[2]!.Mask!.Dispose(), buffers);
        yield return ("mask of another shape", a => a.Branches[0] = a.Branches[0]! with { Mask = a.Branches[2]!.Mask }, buffers);
        yield return ("one output missing", a => a.Outs.RemoveAt(2), ["Forward", "BackwardData", "BackwardFilter"]);
        yield return ("null output", a => a.Outs[1] = null, ["Forward", "BackwardData", "BackwardFilter"]);
        yield return ("short output", a => a.Outs[0] = Buf(new float[7]), ["Forward", "BackwardData", "BackwardFilter"]);
        yield return ("null weight gradient", a => a.Dws[0] = null, ["BackwardFilter"]);
        yield return ("weight gradient of another branch's size", a => a.Dws[0] = a.Dws[2], ["BackwardFilter"]);
        yield return ("weight gradients missing", a => a.Dws.RemoveAt(0), ["BackwardFilter"]);
    }

    [Test]
    public void EveryEntryPointRefusesEveryBadArgumentWithoutACrash()
    {
        int cases = 0;
        foreach (var (name, breakIt, applies) in Breakers())
            foreach (var entry in applies)
            {
                var a = Valid();
                breakIt(a);
                var e = Assert.Catch(() => Call(entry, a), $"{entry} with {name} must throw");
                Assert.That(e, Is.InstanceOf<ArgumentException>().Or.InstanceOf<ObjectDisposedException>(),
                    $"{entry} with {name}: {e!.GetType().Name}: {e.Message}");
                Assert.That(e.Message, Is.Not.Empty, $"{entry} with {name}");
                cases++;
            }
        TestContext.Out.WriteLine($"{cases} bad-argument cases over {EntryPoints.Length} entry points");
        // The valid arguments do run (so the sweep above failed for the broken argument, not for everything).
        foreach (var entry in EntryPoints) Assert.DoesNotThrow(() => Call(entry, Valid()), entry);
    }

    [Test]
    public void TheTensorLevelOperatorRefusesDisposedAndMismatchedTensorsByName()
    {
        var x = Tensor.FromArray(Rng.NormalArray(2 * 3 * 5 * 5), [2, 3, 5, 5], Device.Cpu);
        var w = Tensor.FromArray(Rng.NormalArray(3 * 7 * 3), [3, 1, 7, 3], Device.Cpu);
        var emuW = Tensor.FromArray(Rng.NormalArray(3 * 7 * 3), [3, 1, 7, 3], Device.CudaEmu);
        var e1 = Assert.Throws<ArgumentException>(() => F.DecomposedDepthwiseConv2d(x, [emuW]));
        Assert.That(e1!.Message, Does.Contain("cuda-emu").And.Contain("cpu"), "a weight on another device is named");
        var e2 = Assert.Throws<ArgumentException>(() => F.DecomposedDepthwiseConv2d(x, [w], [Tensor.Ones([3, 1, 7, 5], Device.Cpu)]));
        Assert.That(e2!.Message, Does.Contain("masks[0]"), "a mask of another shape is named");
        w.Dispose();
        var e3 = Assert.Throws<ObjectDisposedException>(() => F.DecomposedDepthwiseConv2d(x, [w]));
        Assert.That(e3!.Message, Does.Contain("disposed"));
    }

    [Test]
    public void DeviceBufferCopiesAreLengthCheckedAndDisposedBuffersSaySo()
    {
        var data = Rng.NormalArray(10);
        using var b = DeviceBuffer<float>.FromSpan(Dev, data);
        Assert.That(b.ToArray(), Is.EqualTo(data));
        Assert.That(b.Length, Is.EqualTo(10));
        Assert.That(b.ElementType, Is.EqualTo(typeof(float)));
        var e = Assert.Throws<ArgumentException>(() => b.CopyFrom(new float[9]));
        Assert.That(e!.Message, Does.Contain("9").And.Contain("10"));
        Assert.Throws<ArgumentException>(() => b.CopyTo(new float[11]));
        b.Dispose();
        Assert.That(b.IsDisposed, Is.True);
        Assert.Throws<ObjectDisposedException>(() => b.ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new DeviceBuffer<float>(Dev, -1));
        Assert.Throws<ArgumentNullException>(() => _ = new DeviceBuffer<float>(null!, 4));
    }
}
