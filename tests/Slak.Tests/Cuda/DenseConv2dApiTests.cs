// The public kernel entry point of the conv2d family (DenseConv2d on DeviceBuffer<float>), on cuda-emu:
//   - parity: forward (with and without bias), input gradient, weight and bias gradients against the CPU backend on
//     the same data, at SLaK's stem geometry (kernel = stride, no padding) and at a general one (3x5 kernel, strides
//     2x1, padding 1x2), outputs poisoned with NaN before every call;
//   - no crash on bad arguments: every entry point is swept with nulls, disposed buffers, short and long buffers,
//     buffers of another device, outputs that alias inputs and impossible shapes, and must throw an
//     ArgumentException or ObjectDisposedException naming the argument (never reach a kernel).
using NUnit.Framework;
using Slak.Cuda.Kernels;
using Slak.Cuda.Runtime;
using Slak.Tests.Support;

namespace Slak.Tests.Cuda;

public sealed class DenseConv2dApiTests : KernelApiFixture
{
    private static readonly DenseConv2dShape Stem = new(2, 3, 8, 8, 4, 4, 4, 4, 4);
    private static readonly DenseConv2dShape General = new(2, 3, 9, 7, 5, 3, 5, StrideH: 2, StrideW: 1, PadH: 1, PadW: 2);

    private static double[] D(Tensor t) => t.ToArray().Select(v => (double)v).ToArray();

    [Test]
    public void KernelsOnDeviceBuffersMatchTheCpuBackend([Values] bool general)
    {
        var s = general ? General : Stem;
        Assert.That((s.OutH, s.OutW), Is.EqualTo(general ? (5, 7) : (2, 2)), "output size");
        var x = Rng.NormalArray(s.InputElements);
        var w = Rng.NormalArray(s.WeightElements, 0.3);
        var bias = Rng.NormalArray(s.Cout);
        var dy = Rng.NormalArray(s.OutputElements);

        // CPU reference through the backend contract (CpuConv2d, itself checked against float64).
        int[] xs = [s.N, s.Cin, s.H, s.W], ws = [s.Cout, s.Cin, s.Kh, s.Kw], ys = [s.N, s.Cout, s.OutH, s.OutW];
        var cx = Tensor.FromArray(x, xs, Device.Cpu);
        var cw = Tensor.FromArray(w, ws, Device.Cpu);
        var cb = Tensor.FromArray(bias, [s.Cout], Device.Cpu);
        var cdy = Tensor.FromArray(dy, ys, Device.Cpu);
        var be = cx.Backend;
        var cy = Tensor.Empty(ys, Device.Cpu);
        be.Conv2dForward(cx, cw, cb, cy, s.StrideH, s.StrideW, s.PadH, s.PadW);
        var cyNoBias = Tensor.Empty(ys, Device.Cpu);
        be.Conv2dForward(cx, cw, null, cyNoBias, s.StrideH, s.StrideW, s.PadH, s.PadW);
        var cdx = Tensor.Empty(xs, Device.Cpu);
        be.Conv2dBackwardData(cdy, cw, cdx, s.StrideH, s.StrideW, s.PadH, s.PadW);
        var cdw = Tensor.Empty(ws, Device.Cpu);
        var cdb = Tensor.Empty([s.Cout], Device.Cpu);
        be.Conv2dBackwardFilter(cx, cdy, cdw, cdb, s.StrideH, s.StrideW, s.PadH, s.PadW);

        using var gx = Buf(x);
        using var gw = Buf(w);
        using var gb = Buf(bias);
        using var gdy = Buf(dy);
        using var gy = Poisoned(s.OutputElements);
        using var gyNoBias = Poisoned(s.OutputElements);
        using var gdx = Poisoned(s.InputElements);
        using var gdw = Poisoned(s.WeightElements);
        using var gdb = Poisoned(s.Cout);
        using var gdwOnly = Poisoned(s.WeightElements);
        DenseConv2d.Forward(Dev, s, gx, gw, gb, gy);
        DenseConv2d.Forward(Dev, s, gx, gw, null, gyNoBias);
        DenseConv2d.BackwardData(Dev, s, gdy, gw, gdx);
        DenseConv2d.BackwardFilter(Dev, s, gx, gdy, gdw, gdb);
        DenseConv2d.BackwardFilter(Dev, s, gx, gdy, gdwOnly, null);

        string ctx(string what) => Rng.Ctx($"{what}, shape {s}");
        Expect.AllClose(gy.ToArray(), D(cy), 1e-5, 1e-5, ctx("forward"));
        Expect.AllClose(gyNoBias.ToArray(), D(cyNoBias), 1e-5, 1e-5, ctx("forward without bias"));
        Expect.AllClose(gdx.ToArray(), D(cdx), 1e-5, 1e-5, ctx("input gradient"));
        Expect.AllClose(gdw.ToArray(), D(cdw), 1e-4, 1e-5, ctx("weight gradient"));
        Expect.AllClose(gdb.ToArray(), D(cdb), 1e-4, 1e-5, ctx("bias gradient"));
        Expect.AllClose(gdwOnly.ToArray(), D(cdw), 1e-4, 1e-5, ctx("weight gradient without the bias"));
        Assert.That(DenseConv2d.Plan(Dev, s).GridX, Is.GreaterThan(0u), ctx("plan"));
    }

    /// <summary>Valid arguments for every entry point, which each sweep case breaks in one place.</summary>
    private sealed class Args
    {
        public GpuDevice? Device;
        public DenseConv2dShape Shape;
        public DeviceBuffer<float>? X, W, Bias, Y, Dy, Dx, Dw, Dbias;
    }

    private Args Valid() => new()
    {
        Device = Dev, Shape = General,
        X = Buf(new float[General.InputElements]), W = Buf(new float[General.WeightElements]),
        Bias = Buf(new float[General.Cout]), Y = Buf(new float[General.OutputElements]),
        Dy = Buf(new float[General.OutputElements]), Dx = Buf(new float[General.InputElements]),
        Dw = Buf(new float[General.WeightElements]), Dbias = Buf(new float[General.Cout]),
    };

    private static readonly string[] EntryPoints = ["Forward", "BackwardData", "BackwardFilter", "Plan"];

    private static void Call(string entry, Args a)
    {
        switch (entry)
        {
            case "Forward": DenseConv2d.Forward(a.Device!, a.Shape, a.X!, a.W!, a.Bias, a.Y!); break;
            case "BackwardData": DenseConv2d.BackwardData(a.Device!, a.Shape, a.Dy!, a.W!, a.Dx!); break;
            case "BackwardFilter": DenseConv2d.BackwardFilter(a.Device!, a.Shape, a.X!, a.Dy!, a.Dw!, a.Dbias); break;
            case "Plan": DenseConv2d.Plan(a.Device!, a.Shape); break;
            default: throw new ArgumentOutOfRangeException(nameof(entry), entry, "unknown entry point");
        }
    }

    /// <summary>(case, how it breaks the arguments, the argument the message must name, the entry points it
    /// applies to).</summary>
    private IEnumerable<(string Name, Action<Args> Break, string Param, string[] Applies)> Breakers()
    {
        string[] all = EntryPoints;
        yield return ("null device", a => a.Device = null, "device", all);
        yield return ("N = 0", a => a.Shape = a.Shape with { N = 0 }, "shape", all);
        yield return ("negative Cin", a => a.Shape = a.Shape with { Cin = -3 }, "shape", all);
        yield return ("stride 0", a => a.Shape = a.Shape with { StrideW = 0 }, "shape", all);
        yield return ("negative padding", a => a.Shape = a.Shape with { PadH = -1 }, "shape", all);
        yield return ("kernel larger than the padded input", a => a.Shape = a.Shape with { Kh = 12 }, "shape", all);
        yield return ("null x", a => a.X = null, "x", ["Forward", "BackwardFilter"]);
        yield return ("disposed x", a => a.X!.Dispose(), "x", ["Forward", "BackwardFilter"]);
        yield return ("short x", a => a.X = Buf(new float[General.InputElements - 1]), "x", ["Forward", "BackwardFilter"]);
        yield return ("x on another device", a => a.X = DeviceBuffer<float>.FromSpan(Other, new float[General.InputElements]), "x", ["Forward", "BackwardFilter"]);
        yield return ("null w", a => a.W = null, "w", ["Forward", "BackwardData"]);
        yield return ("long w", a => a.W = Buf(new float[General.WeightElements + 1]), "w", ["Forward", "BackwardData"]);
        yield return ("short bias", a => a.Bias = Buf(new float[General.Cout - 1]), "bias", ["Forward"]);
        yield return ("disposed y", a => a.Y!.Dispose(), "y", ["Forward"]);
        yield return ("y of the input's size", a => a.Y = Buf(new float[General.InputElements]), "y", ["Forward"]);
        yield return ("null dy", a => a.Dy = null, "dy", ["BackwardData", "BackwardFilter"]);
        yield return ("dy on another device", a => a.Dy = DeviceBuffer<float>.FromSpan(Other, new float[General.OutputElements]), "dy", ["BackwardData", "BackwardFilter"]);
        yield return ("short dx", a => a.Dx = Buf(new float[3]), "dx", ["BackwardData"]);
        yield return ("dx is dy", a => a.Dx = a.Dy, "dx", ["BackwardData"]);
        yield return ("null dw", a => a.Dw = null, "dw", ["BackwardFilter"]);
        yield return ("disposed dw", a => a.Dw!.Dispose(), "dw", ["BackwardFilter"]);
        yield return ("long dbias", a => a.Dbias = Buf(new float[General.Cout + 1]), "dbias", ["BackwardFilter"]);
    }

    [Test]
    public void EveryEntryPointRefusesEveryBadArgumentByName()
    {
        int cases = 0;
        foreach (var (name, breakIt, param, applies) in Breakers())
            foreach (var entry in applies)
            {
                var a = Valid();
                breakIt(a);
                var e = Assert.Catch(() => Call(entry, a), $"{entry} with {name} must throw");
                Assert.That(e, Is.InstanceOf<ArgumentException>().Or.InstanceOf<ObjectDisposedException>(),
                    $"{entry} with {name}: {e!.GetType().Name}: {e.Message}");
                Assert.That(Expect.NamesWord(e.Message, param), Is.True, $"{entry} with {name}: the message names {param}: {e.Message}");
                if (e is ArgumentException ae) Assert.That(ae.ParamName, Is.EqualTo(param), $"{entry} with {name}: ParamName");
                cases++;
            }
        TestContext.Out.WriteLine($"{cases} bad-argument cases over {EntryPoints.Length} entry points");
        // The valid arguments do run (so the sweep above failed for the broken argument, not for everything).
        foreach (var entry in EntryPoints) Assert.DoesNotThrow(() => Call(entry, Valid()), entry);
    }

    [Test]
    public void AnOutputThatIsAnInputIsRefused()
    {
        // A same-size shape (3x3 kernel, padding 1, stride 1, Cin = Cout), where y could otherwise pass for x.
        var s = new DenseConv2dShape(1, 2, 5, 5, 2, 3, 3, PadH: 1, PadW: 1);
        using var x = Buf(new float[s.InputElements]);
        using var w = Buf(new float[s.WeightElements]);
        var e = Assert.Throws<ArgumentException>(() => DenseConv2d.Forward(Dev, s, x, w, null, x))!;
        Assert.That(e.ParamName, Is.EqualTo("y"));
        Assert.That(e.Message, Does.Contain("same buffer as x"));
    }
}
