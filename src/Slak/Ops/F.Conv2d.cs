// Matrix-multiply operators (family conv2d): Linear (the 1x1 convolutions of the block MLP and the classifier, ~80% of
// SLaK's FLOPs) and dense Conv2d (the 4x4/4 stem and 2x2/2 downsampling convolutions).
using Slak.Autograd;

namespace Slak;

public static partial class F
{
    /// <summary>y = x W^T + b over the last dimension: x (..., in), weight (out, in), bias (out) or null.</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
    {
        const string op = nameof(Linear);
        Check.NotNull(x, op, nameof(x));
        Check.Rank(weight, 2, op, nameof(weight), "(out, in)");
        Check.SameDevice(op, x, nameof(x), weight, nameof(weight));
        if (x.Rank == 0 || x.Size(-1) != weight.Size(1))
            throw new ArgumentException($"{op}: x has shape {Shapes.Format(x.Shape)} but weight {Shapes.Format(weight.Shape)} expects last dimension {weight.Size(1)}", nameof(x));
        int inF = weight.Size(1), outF = weight.Size(0);
        if (bias is not null) Check.Vector(op, bias, nameof(bias), outF, x, nameof(x));
        int rows = checked((int)(x.Numel / Math.Max(inF, 1)));
        var shape = x.ShapeArray;
        shape[^1] = outF;
        var y = Tensor.Empty(shape, x.Device);
        var be = x.Backend;
        if (bias is not null) be.LinearBias(x, weight, bias, y); // the bias added as the GEMM's epilogue
        else be.Gemm(false, true, rows, outF, inF, 1f, x, weight, 0f, y);
        Tensor[] inputs = bias is null ? [x, weight] : [x, weight, bias];
        return AutogradEngine.Record(y, op, inputs, g =>
        {
            Tensor? gx = null, gw = null, gb = null;
            if (x.RequiresGrad) { gx = Like(x); be.Gemm(false, false, rows, inF, outF, 1f, g, weight, 0f, gx); }
            if (weight.RequiresGrad) { gw = Like(weight); be.Gemm(true, false, outF, inF, rows, 1f, g, x, 0f, gw); }
            if (bias is not null && bias.RequiresGrad) { gb = Like(bias); be.SumToLastDim(g, gb); }
            return bias is null ? [gx, gw] : [gx, gw, gb];
        });
    }

    /// <summary>Dense 2-D convolution (groups = 1): x (N, Cin, H, W), weight (Cout, Cin, Kh, Kw), bias (Cout) or
    /// null.</summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias, int stride, int padding = 0) =>
        Conv2d(x, weight, bias, (stride, stride), (padding, padding));

    /// <summary>Dense 2-D convolution with per-axis stride and zero padding.</summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias, (int H, int W) stride, (int H, int W) padding)
    {
        const string op = nameof(Conv2d);
        Check.Rank(x, 4, op, nameof(x), "(N, Cin, H, W)");
        Check.Rank(weight, 4, op, nameof(weight), "(Cout, Cin, Kh, Kw)");
        Check.SameDevice(op, x, nameof(x), weight, nameof(weight));
        int n = x.Size(0), cin = x.Size(1), h = x.Size(2), w = x.Size(3);
        int cout = weight.Size(0), kh = weight.Size(2), kw = weight.Size(3);
        if (weight.Size(1) != cin)
            throw new ArgumentException($"{op}: weight {Shapes.Format(weight.Shape)} expects {weight.Size(1)} input channels but x {Shapes.Format(x.Shape)} has {cin}", nameof(weight));
        if (stride.H < 1 || stride.W < 1)
            throw new ArgumentOutOfRangeException(nameof(stride), stride, $"{op}: stride must be >= 1");
        if (padding.H < 0 || padding.W < 0)
            throw new ArgumentOutOfRangeException(nameof(padding), padding, $"{op}: padding must be >= 0");
        int oh = (h + 2 * padding.H - kh) / stride.H + 1, ow = (w + 2 * padding.W - kw) / stride.W + 1;
        if (h + 2 * padding.H < kh || w + 2 * padding.W < kw || oh < 1 || ow < 1)
            throw new ArgumentException($"{op}: kernel {kh}x{kw} does not fit input {h}x{w} with padding {padding}", nameof(x));
        if (bias is not null) Check.Vector(op, bias, nameof(bias), cout, x, nameof(x));
        var y = Tensor.Empty([n, cout, oh, ow], x.Device);
        var be = x.Backend;
        be.Conv2dForward(x, weight, bias, y, stride.H, stride.W, padding.H, padding.W);
        Tensor[] inputs = bias is null ? [x, weight] : [x, weight, bias];
        return AutogradEngine.Record(y, op, inputs, g =>
        {
            Tensor? gx = null, gw = null, gb = null;
            if (x.RequiresGrad) { gx = Like(x); be.Conv2dBackwardData(g, weight, gx, stride.H, stride.W, padding.H, padding.W); }
            if (weight.RequiresGrad || bias?.RequiresGrad == true)
            {
                gw = Like(weight);
                if (bias is not null) gb = Like(bias);
                be.Conv2dBackwardFilter(x, g, gw, gb, stride.H, stride.W, padding.H, padding.W);
            }
            return bias is null ? [gx, gw] : [gx, gw, gb];
        });
    }
}
