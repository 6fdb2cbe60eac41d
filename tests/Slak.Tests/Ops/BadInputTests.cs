// Bad input to every operator: mismatched shapes, even kernel sizes, wrong rank, out-of-range scalars and wrong
// devices (a fake cuda:7 tensor, so the check runs on CPU-only machines). Each case asserts the exact exception
// type, its ParamName, that the message names the argument, and that it shows the offending values.
using NUnit.Framework;
using Slak.Tests.Support;

namespace Slak.Tests.Ops;

public sealed class BadInputTests(string device) : DeviceTest(device)
{
    /// <summary>One bad call: the action (given the test device), the exception type, the argument it must name,
    /// and fragments (values) the message must contain. "{dev}" in a fragment is replaced by the device name.</summary>
    public sealed record Case(string Name, Action<Device> Call, Type Exception, string Param, params string[] Fragments)
    {
        public override string ToString() => Name;
    }

    private static Tensor Z(Device d, params int[] shape) => Tensor.Zeros(shape, d);

    private static Tensor Fake(params int[] shape) => FakeDevice.Tensor(shape);

    private static Tensor Disposed(Device d, params int[] shape)
    {
        var t = Z(d, shape);
        t.Dispose();
        return t;
    }

    private static readonly Type AE = typeof(ArgumentException), AOOR = typeof(ArgumentOutOfRangeException), ANE = typeof(ArgumentNullException);

    private static IEnumerable<TestCaseData> Cases()
    {
        Case[] cases =
        [
            new("Add shapes", d => F.Add(Z(d, 2, 3), Z(d, 3, 2)), AE, "b", "(3, 2)", "(2, 3)"),
            new("Add device", d => F.Add(Z(d, 2, 3), Fake(2, 3)), AE, "b", "cuda:7", "{dev}"),
            new("Mul shapes", d => F.Mul(Z(d, 4), Z(d, 5)), AE, "b", "(5)", "(4)"),
            new("Mul device", d => F.Mul(Z(d, 4), Fake(4)), AE, "b", "cuda:7"),
            new("Add null", d => F.Add(Z(d, 1), null!), ANE, "b"),
            new("Add disposed", d => F.Add(Z(d, 2), Disposed(d, 2)), typeof(ObjectDisposedException), "b", "disposed"),
            new("Mul disposed", d => F.Mul(Disposed(d, 2), Z(d, 2)), typeof(ObjectDisposedException), "a", "disposed"),
            new("MulLastDim gamma length", d => F.MulLastDim(Z(d, 4, 5), Z(d, 4)), AE, "gamma", "(5)", "(4)"),
            new("MulLastDim scalar x", d => F.MulLastDim(Tensor.Scalar(1, d), Z(d, 1)), AE, "x", "rank"),
            new("MulLastDim gamma device", d => F.MulLastDim(Z(d, 4, 5), Fake(5)), AE, "gamma", "cuda:7"),
            new("DropPath rate 1", d => F.DropPath(Z(d, 2, 2), 1f, true, new SlakRandom(1)), AOOR, "rate", "1"),
            new("DropPath rate negative", d => F.DropPath(Z(d, 2, 2), -0.1f, true, new SlakRandom(1)), AOOR, "rate", "-0.1"),
            new("DropPath rate NaN", d => F.DropPath(Z(d, 2, 2), float.NaN, true, new SlakRandom(1)), AOOR, "rate", "NaN"),
            new("DropPath no rng", d => F.DropPath(Z(d, 2, 2), 0.5f, true, null!), ANE, "rng"),
            new("Reshape count", d => F.Reshape(Z(d, 2, 3), 4, 2), AE, "shape", "(4, 2)", "6"),
            new("Reshape infer", d => F.Reshape(Z(d, 2, 3), -1, 4), AE, "shape", "(-1, 4)"),
            new("Reshape two -1", d => F.Reshape(Z(d, 2, 3), -1, -1), AE, "shape", "at most one", "(-1, -1)"),
            new("Reshape negative", d => F.Reshape(Z(d, 2, 3), -2, -3), AE, "shape", "-2", "invalid"),
            new("Permute repeated", d => F.Permute(Z(d, 2, 3, 4), 0, 0, 1), AE, "perm", "(0, 0, 1)"),
            new("Permute length", d => F.Permute(Z(d, 2, 3, 4), 1, 0), AE, "perm", "(1, 0)"),
            new("Permute rank 9", d => F.Permute(Z(d, 1, 1, 1, 1, 1, 1, 1, 1, 2), 8, 7, 6, 5, 4, 3, 2, 1, 0), AE, "x", "rank 9", "8"),
            new("Mean empty", d => F.Mean(Z(d, 0)), AE, "x", "empty"),
            new("GlobalAvgPool rank", d => F.GlobalAvgPool(Z(d, 2, 3, 4)), AE, "x", "rank 4", "(2, 3, 4)"),
            new("Linear features", d => F.Linear(Z(d, 3, 4), Z(d, 5, 6)), AE, "x", "(3, 4)", "(5, 6)"),
            new("Linear weight rank", d => F.Linear(Z(d, 3, 4), Z(d, 4)), AE, "weight", "rank 2", "(4)"),
            new("Linear bias length", d => F.Linear(Z(d, 3, 4), Z(d, 5, 4), Z(d, 4)), AE, "bias", "(5)", "(4)"),
            new("Linear weight device", d => F.Linear(Z(d, 3, 4), Fake(5, 4)), AE, "weight", "cuda:7", "{dev}"),
            new("Linear bias device", d => F.Linear(Z(d, 3, 4), Z(d, 5, 4), Fake(5)), AE, "bias", "cuda:7"),
            new("Linear x on another device", d => F.Linear(Fake(3, 4), Z(d, 5, 4)), AE, "weight", "x is on cuda:7"),
            new("Conv2d x rank", d => F.Conv2d(Z(d, 3, 8, 8), Z(d, 2, 3, 3, 3), null, 1), AE, "x", "rank 4", "(3, 8, 8)"),
            new("Conv2d channels", d => F.Conv2d(Z(d, 1, 3, 8, 8), Z(d, 5, 4, 3, 3), null, 1), AE, "weight", "(5, 4, 3, 3)", "(1, 3, 8, 8)"),
            new("Conv2d stride 0", d => F.Conv2d(Z(d, 1, 3, 8, 8), Z(d, 2, 3, 3, 3), null, 0), AOOR, "stride", "(0, 0)"),
            new("Conv2d padding", d => F.Conv2d(Z(d, 1, 3, 8, 8), Z(d, 2, 3, 3, 3), null, 1, -1), AOOR, "padding", "(-1, -1)"),
            new("Conv2d kernel too large", d => F.Conv2d(Z(d, 1, 1, 2, 2), Z(d, 1, 1, 3, 3), null, 1), AE, "x", "3x3", "2x2"),
            new("Conv2d bias length", d => F.Conv2d(Z(d, 1, 3, 8, 8), Z(d, 2, 3, 3, 3), Z(d, 3), 1), AE, "bias", "(2)", "(3)"),
            new("Conv2d weight device", d => F.Conv2d(Z(d, 1, 3, 8, 8), Fake(2, 3, 3, 3), null, 1), AE, "weight", "cuda:7"),
            new("Conv2d bias device", d => F.Conv2d(Z(d, 1, 3, 8, 8), Z(d, 2, 3, 3, 3), Fake(2), 1), AE, "bias", "cuda:7"),
            new("DepthwiseConv2d even kh", d => F.DepthwiseConv2d(Z(d, 1, 2, 8, 8), Z(d, 2, 1, 4, 3)), AE, "weight", "kh=4", "kw=3"),
            new("DepthwiseConv2d even kw", d => F.DepthwiseConv2d(Z(d, 1, 2, 8, 8), Z(d, 2, 1, 51, 6)), AE, "weight", "kh=51", "kw=6"),
            new("DepthwiseConv2d channels", d => F.DepthwiseConv2d(Z(d, 1, 2, 8, 8), Z(d, 3, 1, 3, 3)), AE, "weight", "(3, 1, 3, 3)", "(2, 1, Kh, Kw)"),
            new("DepthwiseConv2d x rank", d => F.DepthwiseConv2d(Z(d, 8, 8), Z(d, 2, 1, 3, 3)), AE, "x", "rank 4", "(8, 8)"),
            new("DepthwiseConv2d weight rank", d => F.DepthwiseConv2d(Z(d, 1, 2, 8, 8), Z(d, 2, 3, 3)), AE, "weight", "rank 4", "(2, 3, 3)"),
            new("DepthwiseConv2d mask shape", d => F.DepthwiseConv2d(Z(d, 1, 2, 8, 8), Z(d, 2, 1, 5, 3), Z(d, 2, 1, 3, 5)), AE, "mask", "(2, 1, 3, 5)", "(2, 1, 5, 3)"),
            new("DepthwiseConv2d mask device", d => F.DepthwiseConv2d(Z(d, 1, 2, 8, 8), Z(d, 2, 1, 3, 3), Fake(2, 1, 3, 3)), AE, "mask", "cuda:7"),
            new("DepthwiseConv2d weight device", d => F.DepthwiseConv2d(Z(d, 1, 2, 8, 8), Fake(2, 1, 3, 3)), AE, "weight", "cuda:7"),
            new("LayerNorm weight length", d => F.LayerNorm(Z(d, 3, 4), Z(d, 5), Z(d, 4), 1e-6f), AE, "weight", "(4)", "(5)"),
            new("LayerNorm bias device", d => F.LayerNorm(Z(d, 3, 4), Z(d, 4), Fake(4), 1e-6f), AE, "bias", "cuda:7"),
            new("LayerNorm eps 0", d => F.LayerNorm(Z(d, 3, 4), Z(d, 4), Z(d, 4), 0f), AOOR, "eps", "0"),
            new("LayerNorm scalar", d => F.LayerNorm(Tensor.Scalar(1, d), Z(d, 1), Z(d, 1), 1e-6f), AE, "x", "rank"),
            new("LayerNormChannelsFirst rank", d => F.LayerNormChannelsFirst(Z(d, 3, 4), Z(d, 4), Z(d, 4), 1e-6f), AE, "x", "rank 4", "(3, 4)"),
            new("LayerNormChannelsFirst weight", d => F.LayerNormChannelsFirst(Z(d, 1, 3, 2, 2), Z(d, 2), Z(d, 3), 1e-6f), AE, "weight", "(3)", "(2)"),
            new("BatchNorm2d runningVar length", d => F.BatchNorm2d(Z(d, 2, 3, 2, 2), Z(d, 3), Z(d, 3), Z(d, 3), Z(d, 4), true), AE, "runningVar", "(3)", "(4)"),
            new("BatchNorm2d runningMean device", d => F.BatchNorm2d(Z(d, 2, 3, 2, 2), Z(d, 3), Z(d, 3), Fake(3), Z(d, 3), true), AE, "runningMean", "cuda:7"),
            new("BatchNorm2d one value per channel", d => F.BatchNorm2d(Z(d, 1, 2, 1, 1), Z(d, 2), Z(d, 2), Z(d, 2), Z(d, 2), true), AE, "x", "(1, 2, 1, 1)"),
            new("BatchNorm2d rank", d => F.BatchNorm2d(Z(d, 2, 3), Z(d, 3), Z(d, 3), Z(d, 3), Z(d, 3), true), AE, "x", "rank 4"),
            new("BatchNorm2d momentum", d => F.BatchNorm2d(Z(d, 2, 3, 2, 2), Z(d, 3), Z(d, 3), Z(d, 3), Z(d, 3), true, momentum: 1.5f), AOOR, "momentum", "1.5"),
            new("BatchNorm2d eps", d => F.BatchNorm2d(Z(d, 2, 3, 2, 2), Z(d, 3), Z(d, 3), Z(d, 3), Z(d, 3), true, eps: -1f), AOOR, "eps", "-1"),
            new("SoftTargetCrossEntropy shapes", d => F.SoftTargetCrossEntropy(Z(d, 4, 5), Z(d, 3, 5)), AE, "targets", "(3, 5)", "(4, 5)"),
            new("SoftTargetCrossEntropy rank", d => F.SoftTargetCrossEntropy(Z(d, 5), Z(d, 5)), AE, "logits", "rank 2", "(5)"),
            new("SoftTargetCrossEntropy device", d => F.SoftTargetCrossEntropy(Z(d, 4, 5), Fake(4, 5)), AE, "targets", "cuda:7"),
            new("CrossEntropy label count", d => F.CrossEntropy(Z(d, 4, 5), [0, 1, 2]), AE, "labels", "3", "4"),
            new("CrossEntropy label range", d => F.CrossEntropy(Z(d, 2, 5), [0, 7]), AOOR, "labels", "7", "[0, 5)"),
            new("SmoothedTargets smoothing 1", d => F.SmoothedTargets([0], 3, 1f, d), AOOR, "smoothing", "1"),
            new("SmoothedTargets smoothing NaN", d => F.SmoothedTargets([0], 3, float.NaN, d), AOOR, "smoothing", "NaN"),
            new("SmoothedTargets classes", d => F.SmoothedTargets([0], -2, 0.1f, d), AOOR, "classes", "-2"),
            new("SmoothedTargets negative label", d => F.SmoothedTargets([0, -1], 3, 0.1f, d), AOOR, "labels", "-1"),
        ];
        foreach (var c in cases) yield return new TestCaseData(c).SetArgDisplayNames(c.Name);
    }

    [TestCaseSource(nameof(Cases))]
    public void ThrowsNamingArgumentAndValues(Case c)
    {
        ArgumentNullException.ThrowIfNull(c);
        var fragments = c.Fragments.Select(f => f.Replace("{dev}", Dev.ToString(), StringComparison.Ordinal)).ToArray();
        var method = typeof(Expect).GetMethod(nameof(Expect.Throws))!.MakeGenericMethod(c.Exception);
        try
        {
            method.Invoke(null, [(Action)(() => c.Call(Dev)), c.Param, Ctx(c.Name), fragments]);
        }
        catch (System.Reflection.TargetInvocationException tie) when (tie.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(tie.InnerException).Throw();
        }
    }
}
