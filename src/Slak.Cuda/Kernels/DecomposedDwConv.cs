// The documented kernel-level entry point of the decomposed depthwise convolution family (SLaK's large kernel), for
// users who benchmark or embed the CUDA kernels without tensors or autograd: plan and launch on typed device buffers
// at a given shape and mask. Every argument is checked here, at the public edge, before anything reaches a launcher:
// the device, null and disposed buffers, buffers of another device, element counts against the shape, odd kernel
// sizes, branch counts, non-negative sizes. A wrong argument is an ArgumentException (or ObjectDisposedException)
// that names it; nothing can fault inside a kernel. The launchers behind it (DwConvFusedKernels and the per-branch
// fallback) decide the launch through the plans of cuda/include/slak/slak_plan.h.
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>The shape of a depthwise convolution: N images of C channels of H x W, NCHW, float32.</summary>
public readonly record struct DwConvShape(int N, int C, int H, int W)
{
    /// <summary>Elements of an input or output (N * C * H * W).</summary>
    public long Elements => (long)N * C * H * W;

    /// <inheritdoc/>
    public override string ToString() => $"(N={N}, C={C}, H={H}, W={W})";
}

/// <summary>One branch: its weight (C, 1, Kh, Kw) and optional 0/1 mask of the same shape (null: dense).</summary>
public sealed record DwConvBranch(DeviceBuffer<float> Weight, DeviceBuffer<float>? Mask, int Kh, int Kw);

/// <summary>The decomposed depthwise convolution kernels on device buffers: for each branch b, a depthwise
/// convolution with Weight_b * Mask_b, "same" zero padding (Kh/2, Kw/2), stride 1.</summary>
public static class DecomposedDwConv
{
    /// <summary>The launch plan the forward (and input gradient) would use: grid, block, shared memory,
    /// fallback.</summary>
    public static LaunchPlan Plan(GpuDevice device, DwConvShape shape, IReadOnlyList<(int Kh, int Kw)> kernels)
    {
        ArgumentNullException.ThrowIfNull(device);
        CheckShape(shape);
        ArgumentNullException.ThrowIfNull(kernels);
        if (kernels.Count == 0) throw new ArgumentException("at least one branch kernel size is required", nameof(kernels));
        var branches = new DwConvFusedBranch[kernels.Count];
        for (int b = 0; b < kernels.Count; b++)
        {
            CheckKernel(kernels[b].Kh, kernels[b].Kw, b);
            branches[b] = new DwConvFusedBranch(DevicePtr.Null, DevicePtr.Null, kernels[b].Kh, kernels[b].Kw);
        }
        return DwConvFusedKernels.Plan(device.Inner, branches, shape.N, shape.C, shape.H, shape.W);
    }

    /// <summary>ys[b] = branch b applied to x; every output is overwritten.</summary>
    public static void Forward(GpuDevice device, DwConvShape shape, DeviceBuffer<float> x,
                               IReadOnlyList<DwConvBranch> branches, IReadOnlyList<DeviceBuffer<float>> ys)
    {
        var br = Branches(device, shape, branches);
        var input = Activation(device, shape, x, nameof(x));
        var outs = Activations(device, shape, ys, br.Length, nameof(ys));
        DwConvFusedKernels.Forward(device.Inner, outs, input, br, shape.N, shape.C, shape.H, shape.W);
    }

    /// <summary>y = sum over branches of branch b applied to x (inference); y is overwritten.</summary>
    public static void ForwardSum(GpuDevice device, DwConvShape shape, DeviceBuffer<float> x,
                                  IReadOnlyList<DwConvBranch> branches, DeviceBuffer<float> y)
    {
        var br = Branches(device, shape, branches);
        var input = Activation(device, shape, x, nameof(x));
        var output = Activation(device, shape, y, nameof(y));
        DwConvFusedKernels.ForwardSum(device.Inner, output, input, br, shape.N, shape.C, shape.H, shape.W);
    }

    /// <summary>dx = sum over branches of the input gradient of branch b given dys[b]; dx is overwritten.</summary>
    public static void BackwardData(GpuDevice device, DwConvShape shape, IReadOnlyList<DeviceBuffer<float>> dys,
                                    IReadOnlyList<DwConvBranch> branches, DeviceBuffer<float> dx)
    {
        var br = Branches(device, shape, branches);
        var grads = Activations(device, shape, dys, br.Length, nameof(dys));
        var output = Activation(device, shape, dx, nameof(dx));
        DwConvFusedKernels.BackwardData(device.Inner, output, grads, br, shape.N, shape.C, shape.H, shape.W);
    }

    /// <summary>dws[b] = weight gradient of branch b given x and dys[b] (each (C, 1, Kh, Kw), overwritten); a branch
    /// with a mask gets its live taps computed and every pruned tap exactly 0.</summary>
    public static void BackwardFilter(GpuDevice device, DwConvShape shape, DeviceBuffer<float> x,
                                      IReadOnlyList<DeviceBuffer<float>> dys, IReadOnlyList<DwConvBranch> branches,
                                      IReadOnlyList<DeviceBuffer<float>> dws)
    {
        var br = Branches(device, shape, branches);
        var input = Activation(device, shape, x, nameof(x));
        var grads = Activations(device, shape, dys, br.Length, nameof(dys));
        ArgumentNullException.ThrowIfNull(dws);
        if (dws.Count != br.Length)
            throw new ArgumentException($"dws must have one buffer per branch ({br.Length}), got {dws.Count}", nameof(dws));
        var outs = new DevicePtr[br.Length];
        for (int b = 0; b < br.Length; b++)
            outs[b] = Buffer(device, dws[b], (long)shape.C * br[b].Kh * br[b].Kw, $"dws[{b}]", $"(C={shape.C}, 1, {br[b].Kh}, {br[b].Kw})");
        DwConvFusedKernels.BackwardFilter(device.Inner, outs, input, grads, br, shape.N, shape.C, shape.H, shape.W);
    }

    private static void CheckShape(DwConvShape shape)
    {
        if (shape.N < 0 || shape.C < 0 || shape.H < 0 || shape.W < 0)
            throw new ArgumentException($"shape sizes must be non-negative, got {shape}", nameof(shape));
    }

    private static void CheckKernel(int kh, int kw, int b)
    {
        if (kh < 1 || kw < 1 || kh % 2 == 0 || kw % 2 == 0)
            throw new ArgumentException($"branch {b}: kernel sizes must be odd and positive for 'same' padding, got {kh}x{kw}", "branches");
    }

    private static DwConvFusedBranch[] Branches(GpuDevice device, DwConvShape shape, IReadOnlyList<DwConvBranch> branches)
    {
        ArgumentNullException.ThrowIfNull(device);
        CheckShape(shape);
        ArgumentNullException.ThrowIfNull(branches);
        if (branches.Count == 0) throw new ArgumentException("at least one branch is required", nameof(branches));
        var result = new DwConvFusedBranch[branches.Count];
        for (int b = 0; b < branches.Count; b++)
        {
            var br = branches[b] ?? throw new ArgumentNullException(nameof(branches), $"branches[{b}] is null");
            CheckKernel(br.Kh, br.Kw, b);
            long taps = (long)shape.C * br.Kh * br.Kw;
            string shapeText = $"(C={shape.C}, 1, {br.Kh}, {br.Kw})";
            var w = Buffer(device, br.Weight, taps, $"branches[{b}].Weight", shapeText);
            var m = br.Mask is null ? DevicePtr.Null : Buffer(device, br.Mask, taps, $"branches[{b}].Mask", shapeText);
            result[b] = new DwConvFusedBranch(w, m, br.Kh, br.Kw);
        }
        return result;
    }

    private static DevicePtr Activation(GpuDevice device, DwConvShape shape, DeviceBuffer<float> buffer, string name) =>
        Buffer(device, buffer, shape.Elements, name, shape.ToString());

    private static DevicePtr[] Activations(GpuDevice device, DwConvShape shape, IReadOnlyList<DeviceBuffer<float>> buffers,
                                           int branches, string name)
    {
        ArgumentNullException.ThrowIfNull(buffers, name);
        if (buffers.Count != branches)
            throw new ArgumentException($"{name} must have one buffer per branch ({branches}), got {buffers.Count}", name);
        var result = new DevicePtr[branches];
        for (int b = 0; b < branches; b++) result[b] = Buffer(device, buffers[b], shape.Elements, $"{name}[{b}]", shape.ToString());
        return result;
    }

    private static DevicePtr Buffer(GpuDevice device, DeviceBuffer<float>? buffer, long elements, string name, string shape)
    {
        if (buffer is null) throw new ArgumentNullException(name, $"{name} is null");
        if (buffer.IsDisposed) throw new ObjectDisposedException(name, $"{name} is disposed");
        if (!ReferenceEquals(buffer.Device, device))
            throw new ArgumentException($"{name} lives on {buffer.Device.Name}, the launch is on {device.Name}", name);
        if (buffer.Length != elements)
            throw new ArgumentException($"{name} has {buffer.Length} elements; shape {shape} needs {elements}", name);
        return buffer.Pointer;
    }
}
