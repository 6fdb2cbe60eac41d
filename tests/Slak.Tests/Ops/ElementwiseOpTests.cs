// Element-wise operators (family elementwise: Add, Mul, Scale, fills): forward through Slak.F against the float64
// references, backward by GradCheck, and the backend kernels called directly on NaN-poisoned outputs so an element
// a kernel forgets to write fails. Sizes include 1, odd sizes and sizes past the CPU backend's parallel chunk.
using NUnit.Framework;
using Slak.Tests.Support;

namespace Slak.Tests.Ops;

public sealed class ElementwiseOpTests(string device) : DeviceTest(device)
{
    /// <summary>Element counts: tiny, odd, and past the 65536-element parallel chunk (with a ragged tail).</summary>
    private static readonly int[][] Shapes = [[1], [7], [3, 5, 2], [2, 1, 1, 1], [131075]];

    [TestCaseSource(nameof(Shapes))]
    [KernelParity("scale_kernel")]
    public void AddMulScaleForwardMatchReference(int[] shape)
    {
        var (a, ra) = RandN(shape);
        var (b, rb) = RandN(shape);
        float alpha = (float)Rng.Uniform(-3, 3);
        Expect.AllClose(F.Add(a, b), Reference.Add(ra, rb), 1e-6, 1e-6, Ctx($"Add {Slak.Shapes.Format(shape)}"));
        Expect.AllClose(F.Mul(a, b), Reference.Mul(ra, rb), 1e-6, 1e-6, Ctx($"Mul {Slak.Shapes.Format(shape)}"));
        Expect.AllClose(F.Scale(a, alpha), Reference.Scale(ra, alpha), 1e-6, 1e-6, Ctx($"Scale {Slak.Shapes.Format(shape)} by {alpha}"));
    }

    [TestCaseSource(nameof(Shapes))]
    [KernelParity("axpy_kernel", "fill_from_scalar_kernel", "fill_kernel")]
    public void ElementwiseKernelsWriteEveryElement(int[] shape)
    {
        var (a, ra) = RandN(shape);
        var (b, rb) = RandN(shape);
        var be = a.Backend;
        var y = Poisoned(shape);
        be.Add(a, b, y);
        Expect.AllClose(y, Reference.Add(ra, rb), 1e-6, 1e-6, Ctx("IBackend.Add"));
        y = Poisoned(shape);
        be.Mul(a, b, y);
        Expect.AllClose(y, Reference.Mul(ra, rb), 1e-6, 1e-6, Ctx("IBackend.Mul"));
        y = Poisoned(shape);
        be.Scale(a, -1.5f, y);
        Expect.AllClose(y, Reference.Scale(ra, -1.5), 1e-6, 1e-6, Ctx("IBackend.Scale"));
        y = Poisoned(shape);
        be.Gelu(a, y);
        Expect.AllClose(y, Reference.Gelu(ra), 1e-6, 1e-5, Ctx("IBackend.Gelu"));
        y = Poisoned(shape);
        be.Copy(a, y);
        Expect.Exactly(y.ToArray(), a.ToArray(), Ctx("IBackend.Copy"));
        be.Fill(y, 2.5f);
        Assert.That(y.ToArray(), Is.All.EqualTo(2.5f), Ctx("IBackend.Fill"));
        y = Poisoned(shape);
        be.FillFromScalar(y, Tensor.Scalar(3f, Dev), -0.5f);
        Assert.That(y.ToArray(), Is.All.EqualTo(-1.5f), Ctx("IBackend.FillFromScalar"));
        // AddScaled accumulates: y = b + 0.25 a.
        var acc = T(b.ToArray(), shape);
        be.AddScaled(acc, a, 0.25f);
        Expect.AllClose(acc, Reference.Add(rb, Reference.Scale(ra, 0.25)), 1e-6, 1e-6, Ctx("IBackend.AddScaled"));
    }

    [Test]
    [KernelParity("add_kernel", "mul_kernel")]
    public void AddAndMulMayWriteIntoAnInput()
    {
        int[] shape = [Rng.Int(1, 9), Rng.Int(1, 70000)];
        var (a, ra) = RandN(shape);
        var (b, rb) = RandN(shape);
        a.Backend.Add(a, b, a);
        Expect.AllClose(a, Reference.Add(ra, rb), 1e-6, 1e-6, Ctx("Add with y aliasing a"));
        a.Backend.Mul(a, b, b);
        Expect.AllClose(b, Reference.Mul(Reference.Add(ra, rb), rb), 1e-5, 1e-6, Ctx("Mul with y aliasing b"));
    }

    [Test]
    public void GradientsOfAddMulScale()
    {
        int[] shape = [Rng.Int(1, 4), Rng.Int(1, 6), Rng.Int(1, 5)];
        int n = RefTensor.Numel(shape);
        float alpha = (float)Rng.Uniform(-2, 2);
        GradInput A(string name) => new(name, Rng.NormalArray(n), shape);
        GradCheck.Check(Dev, Rng, "Add", [A("a"), A("b")], t => F.Add(t[0], t[1]), r => Reference.Add(r[0], r[1]));
        GradCheck.Check(Dev, Rng, "Mul", [A("a"), A("b")], t => F.Mul(t[0], t[1]), r => Reference.Mul(r[0], r[1]));
        GradCheck.Check(Dev, Rng, "Mul (b constant)", [A("a"), A("b") with { RequiresGrad = false }],
            t => F.Mul(t[0], t[1]), r => Reference.Mul(r[0], r[1]));
        GradCheck.Check(Dev, Rng, "Scale", [A("x")], t => F.Scale(t[0], alpha), r => Reference.Scale(r[0], alpha));
    }
}
