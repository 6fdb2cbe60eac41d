// The documented kernel-level entry point of the conv2d family (SLaK's stem and downsampling convolutions: dense,
// groups = 1), for users who benchmark or embed the CUDA kernels without tensors or autograd: plan and launch on
// typed device buffers at a given shape. Every argument is checked here, at the public edge, before anything reaches
// the launchers (Conv2dKernels, which trust what they are given): the device, null, disposed and foreign buffers,
// element counts against the shape, sizes, strides, padding, a kernel larger than the padded input, and an output
// that is also an input. A wrong argument is an ArgumentException (or ObjectDisposedException) that names it.
using System.Globalization;
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>The shape of a dense (groups = 1) 2-D convolution, NCHW, float32: input (N, Cin, H, W), weight
/// (Cout, Cin, Kh, Kw), zero padding of PadH rows and PadW columns on each side, output (N, Cout, OutH,
/// OutW).</summary>
/// <param name="N">Images.</param>
/// <param name="Cin">Input channels.</param>
/// <param name="H">Input height.</param>
/// <param name="W">Input width.</param>
/// <param name="Cout">Output channels.</param>
/// <param name="Kh">Kernel height.</param>
/// <param name="Kw">Kernel width.</param>
/// <param name="StrideH">Vertical stride.</param>
/// <param name="StrideW">Horizontal stride.</param>
/// <param name="PadH">Zero rows above and below.</param>
/// <param name="PadW">Zero columns left and right.</param>
public readonly record struct DenseConv2dShape(int N, int Cin, int H, int W, int Cout, int Kh, int Kw,
                                               int StrideH = 1, int StrideW = 1, int PadH = 0, int PadW = 0)
{
    /// <summary>Output height, (H + 2 PadH - Kh) / StrideH + 1 (0 for a shape the entry points refuse).</summary>
    public int OutH => Out(H, PadH, Kh, StrideH);

    /// <summary>Output width, (W + 2 PadW - Kw) / StrideW + 1 (0 for a shape the entry points refuse).</summary>
    public int OutW => Out(W, PadW, Kw, StrideW);

    /// <summary>Elements of the input, N * Cin * H * W.</summary>
    public long InputElements => (long)N * Cin * H * W;

    /// <summary>Elements of the weight, Cout * Cin * Kh * Kw.</summary>
    public long WeightElements => (long)Cout * Cin * Kh * Kw;

    /// <summary>Elements of the output, N * Cout * OutH * OutW.</summary>
    public long OutputElements => (long)N * Cout * OutH * OutW;

    private static int Out(int size, int pad, int k, int stride)
    {
        long span = (long)size + 2L * pad - k;
        return stride < 1 || span < 0 ? 0 : (int)Math.Min(span / stride + 1, int.MaxValue);
    }

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"(N={N}, Cin={Cin}, H={H}, W={W}, Cout={Cout}, kernel {Kh}x{Kw}, stride {StrideH}x{StrideW}, padding {PadH}x{PadW})");
}

/// <summary>The dense 2-D convolution kernels on device buffers: y = conv(x, w) + bias with zero padding, and its
/// input, weight and bias gradients. Every output is overwritten.</summary>
public static class DenseConv2d
{
    /// <summary>The launch plan of the forward kernel at <paramref name="shape"/>: grid, block, shared
    /// memory.</summary>
    public static LaunchPlan Plan(GpuDevice device, DenseConv2dShape shape)
    {
        ArgumentNullException.ThrowIfNull(device);
        return Conv2dKernels.ForwardPlan(device.Inner, Params(shape));
    }

    /// <summary>y = conv(x, w) + bias; <paramref name="bias"/> (Cout elements) may be null.</summary>
    public static void Forward(GpuDevice device, DenseConv2dShape shape, DeviceBuffer<float> x, DeviceBuffer<float> w,
                               DeviceBuffer<float>? bias, DeviceBuffer<float> y)
    {
        ArgumentNullException.ThrowIfNull(device);
        var p = Params(shape);
        var px = Input(device, shape, x, nameof(x));
        var pw = Weight(device, shape, w, nameof(w));
        var pb = bias is null ? DevicePtr.Null : Bias(device, shape, bias, nameof(bias));
        var py = Output(device, shape, y, nameof(y));
        Distinct(y, nameof(y), (x, nameof(x)), (w, nameof(w)), (bias, nameof(bias)));
        Conv2dKernels.Forward(device.Inner, py, px, pw, pb, p);
    }

    /// <summary>dx = the input gradient of the convolution given the output gradient dy.</summary>
    public static void BackwardData(GpuDevice device, DenseConv2dShape shape, DeviceBuffer<float> dy,
                                    DeviceBuffer<float> w, DeviceBuffer<float> dx)
    {
        ArgumentNullException.ThrowIfNull(device);
        var p = Params(shape);
        var pdy = Output(device, shape, dy, nameof(dy));
        var pw = Weight(device, shape, w, nameof(w));
        var pdx = Input(device, shape, dx, nameof(dx));
        Distinct(dx, nameof(dx), (dy, nameof(dy)), (w, nameof(w)));
        Conv2dKernels.BackwardData(device.Inner, pdx, pdy, pw, p);
    }

    /// <summary>dw = the weight gradient given x and dy, and dbias (Cout elements; null: not computed) = the sum of
    /// dy over images and pixels.</summary>
    public static void BackwardFilter(GpuDevice device, DenseConv2dShape shape, DeviceBuffer<float> x,
                                      DeviceBuffer<float> dy, DeviceBuffer<float> dw, DeviceBuffer<float>? dbias)
    {
        ArgumentNullException.ThrowIfNull(device);
        var p = Params(shape);
        var px = Input(device, shape, x, nameof(x));
        var pdy = Output(device, shape, dy, nameof(dy));
        var pdw = Weight(device, shape, dw, nameof(dw));
        var pdb = dbias is null ? DevicePtr.Null : Bias(device, shape, dbias, nameof(dbias));
        Distinct(dw, nameof(dw), (x, nameof(x)), (dy, nameof(dy)), (dbias, nameof(dbias)));
        if (dbias is not null) Distinct(dbias, nameof(dbias), (x, nameof(x)), (dy, nameof(dy)));
        Conv2dKernels.BackwardFilter(device.Inner, pdw, pdb, px, pdy, p);
    }

    /// <summary>The kernels' parameter block, after checking every field of <paramref name="shape"/>.</summary>
    private static Conv2dParams Params(DenseConv2dShape shape)
    {
        var s = shape;
        Positive(s.N, nameof(s.N), s);
        Positive(s.Cin, nameof(s.Cin), s);
        Positive(s.H, nameof(s.H), s);
        Positive(s.W, nameof(s.W), s);
        Positive(s.Cout, nameof(s.Cout), s);
        Positive(s.Kh, nameof(s.Kh), s);
        Positive(s.Kw, nameof(s.Kw), s);
        Positive(s.StrideH, nameof(s.StrideH), s);
        Positive(s.StrideW, nameof(s.StrideW), s);
        if (s.PadH < 0 || s.PadW < 0)
            throw new ArgumentException($"padding must be >= 0, got PadH={s.PadH}, PadW={s.PadW} in shape {s}", nameof(shape));
        if (s.Kh > s.H + 2L * s.PadH || s.Kw > s.W + 2L * s.PadW)
            throw new ArgumentException($"the {s.Kh}x{s.Kw} kernel does not fit the padded {s.H + 2L * s.PadH}x{s.W + 2L * s.PadW} input of shape {s}", nameof(shape));
        // The kernels index a plane (H * W, OutH * OutW) and a weight row with 32-bit integers.
        if ((long)s.H * s.W > int.MaxValue || (long)s.OutH * s.OutW > int.MaxValue || s.WeightElements > int.MaxValue)
            throw new ArgumentException($"a plane or the weight of shape {s} has more than {int.MaxValue} elements", nameof(shape));
        return new Conv2dParams(s.N, s.Cin, s.H, s.W, s.Cout, s.Kh, s.Kw, s.StrideH, s.StrideW, s.PadH, s.PadW, s.OutH, s.OutW);
    }

    private static void Positive(int value, string field, DenseConv2dShape shape)
    {
        if (value < 1) throw new ArgumentException($"{field} must be >= 1, got {field}={value} in shape {shape}", nameof(shape));
    }

    private static DevicePtr Input(GpuDevice device, DenseConv2dShape s, DeviceBuffer<float>? b, string name) =>
        Pointer(device, b, s.InputElements, name, $"(N, Cin, H, W) = ({s.N}, {s.Cin}, {s.H}, {s.W})");

    private static DevicePtr Weight(GpuDevice device, DenseConv2dShape s, DeviceBuffer<float>? b, string name) =>
        Pointer(device, b, s.WeightElements, name, $"(Cout, Cin, Kh, Kw) = ({s.Cout}, {s.Cin}, {s.Kh}, {s.Kw})");

    private static DevicePtr Bias(GpuDevice device, DenseConv2dShape s, DeviceBuffer<float>? b, string name) =>
        Pointer(device, b, s.Cout, name, $"(Cout) = ({s.Cout})");

    private static DevicePtr Output(GpuDevice device, DenseConv2dShape s, DeviceBuffer<float>? b, string name) =>
        Pointer(device, b, s.OutputElements, name, $"(N, Cout, OutH, OutW) = ({s.N}, {s.Cout}, {s.OutH}, {s.OutW})");

    private static DevicePtr Pointer(GpuDevice device, DeviceBuffer<float>? buffer, long elements, string name, string layout)
    {
        if (buffer is null) throw new ArgumentNullException(name, $"{name} is null");
        if (buffer.IsDisposed) throw new ObjectDisposedException(name, $"{name} is disposed");
        if (!ReferenceEquals(buffer.Device, device))
            throw new ArgumentException($"{name} lives on {buffer.Device.Name}, the launch is on {device.Name}", name);
        if (buffer.Length != elements)
            throw new ArgumentException($"{name} has {buffer.Length} elements; {layout} needs {elements}", name);
        return buffer.Pointer;
    }

    /// <summary>Refuses an output that is also one of the inputs (the kernels read their inputs while
    /// writing).</summary>
    private static void Distinct(DeviceBuffer<float> output, string name, params ReadOnlySpan<(DeviceBuffer<float>? Input, string Name)> inputs)
    {
        foreach (var (input, inputName) in inputs)
            if (ReferenceEquals(output, input))
                throw new ArgumentException($"{name} must not be the same buffer as {inputName}", name);
    }
}
