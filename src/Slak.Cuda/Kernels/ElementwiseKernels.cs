// Typed launchers for cuda/kernels/elementwise.cu (fill, copy, add, axpy, mul, scale on float32).
//
// The template every kernel family follows: one static class per cuda/kernels file; each launcher asserts its
// invariants (debug builds only: the arguments were validated once, at the public edge, by Slak.F or the kernel API),
// computes grid and block, and passes a stackalloc'd array of pointers to locals of exactly the kernel's parameter
// types (never a boxed object[]: a wrong type would silently corrupt the launch). Parameter order mirrors the kernel:
// outputs, inputs, scalars, sizes. Grid and block come from the launch plan of slak_plan.h (LaunchPlans). Works on any
// IGpuDevice (GPU or emulator).
using System.Diagnostics;
using Slak.Cuda.Runtime;

namespace Slak.Cuda.Kernels;

/// <summary>Launchers of the float32 element-wise kernels.</summary>
internal static unsafe class ElementwiseKernels
{
    // ---- fill / copy ----

    /// <summary>out[i] = value for i in [0, n).</summary>
    public static void Fill(IGpuDevice dev, DevicePtr output, float value, long n)
    {
        if (!Check(dev, n, nameof(Fill), (output, nameof(output)))) return;
        var p = output.Address;
        nint* args = stackalloc nint[] { (nint)(&p), (nint)(&value), (nint)(&n) };
        Launch(dev, "fill_kernel", n, new ReadOnlySpan<nint>(args, 3));
    }

    /// <summary>out[i] = input[i] for i in [0, n) (the buffers must not overlap).</summary>
    public static void Copy(IGpuDevice dev, DevicePtr output, DevicePtr input, long n)
    {
        if (!Check(dev, n, nameof(Copy), (output, nameof(output)), (input, nameof(input)))) return;
        ulong o = output.Address, i = input.Address;
        nint* args = stackalloc nint[] { (nint)(&o), (nint)(&i), (nint)(&n) };
        Launch(dev, "copy_kernel", n, new ReadOnlySpan<nint>(args, 3));
    }

    // ---- binary ----

    /// <summary>out[i] = a[i] + b[i] for i in [0, n) (out may be a or b).</summary>
    public static void Add(IGpuDevice dev, DevicePtr output, DevicePtr a, DevicePtr b, long n) =>
        Binary(dev, "add_kernel", nameof(Add), output, a, b, n);

    /// <summary>out[i] = a[i] * b[i] for i in [0, n) (out may be a or b).</summary>
    public static void Mul(IGpuDevice dev, DevicePtr output, DevicePtr a, DevicePtr b, long n) =>
        Binary(dev, "mul_kernel", nameof(Mul), output, a, b, n);

    private static void Binary(IGpuDevice dev, string kernel, string op, DevicePtr output, DevicePtr a, DevicePtr b,
                               long n)
    {
        if (!Check(dev, n, op, (output, nameof(output)), (a, nameof(a)), (b, nameof(b)))) return;
        ulong o = output.Address, pa = a.Address, pb = b.Address;
        nint* args = stackalloc nint[] { (nint)(&o), (nint)(&pa), (nint)(&pb), (nint)(&n) };
        Launch(dev, kernel, n, new ReadOnlySpan<nint>(args, 4));
    }

    // ---- scaled ----

    /// <summary>y[i] += alpha * x[i] for i in [0, n) (x and y must not overlap).</summary>
    public static void Axpy(IGpuDevice dev, DevicePtr y, DevicePtr x, float alpha, long n)
    {
        if (!Check(dev, n, nameof(Axpy), (y, nameof(y)), (x, nameof(x)))) return;
        ulong py = y.Address, px = x.Address;
        nint* args = stackalloc nint[] { (nint)(&py), (nint)(&px), (nint)(&alpha), (nint)(&n) };
        Launch(dev, "axpy_kernel", n, new ReadOnlySpan<nint>(args, 4));
    }

    /// <summary>out[i] = alpha * input[i] for i in [0, n) (out may be input).</summary>
    public static void Scale(IGpuDevice dev, DevicePtr output, DevicePtr input, float alpha, long n)
    {
        if (!Check(dev, n, nameof(Scale), (output, nameof(output)), (input, nameof(input)))) return;
        ulong o = output.Address, i = input.Address;
        nint* args = stackalloc nint[] { (nint)(&o), (nint)(&i), (nint)(&alpha), (nint)(&n) };
        Launch(dev, "scale_kernel", n, new ReadOnlySpan<nint>(args, 4));
    }

    // ---- broadcast ----

    /// <summary>out[i] = scale * scalar[0] for i in [0, n) (a device scalar broadcast without a host round
    /// trip).</summary>
    public static void FillFromScalar(IGpuDevice dev, DevicePtr output, DevicePtr scalar, float scale, long n)
    {
        if (!Check(dev, n, nameof(FillFromScalar), (output, nameof(output)), (scalar, nameof(scalar)))) return;
        ulong o = output.Address, s = scalar.Address;
        nint* args = stackalloc nint[] { (nint)(&o), (nint)(&s), (nint)(&scale), (nint)(&n) };
        Launch(dev, "fill_from_scalar_kernel", n, new ReadOnlySpan<nint>(args, 4));
    }

    // ---- launch plumbing ----

    // Asserts the common invariants (a tensor's storage: non-null, 4-byte aligned; n >= 0); false when there is
    // nothing to do (n == 0).
    private static bool Check(IGpuDevice dev, long n, string op, params ReadOnlySpan<(DevicePtr Ptr, string Name)> ptrs)
    {
        Debug.Assert(dev is not null && n >= 0, $"{op}: n={n}");
        if (n == 0) return false;
        foreach (var (ptr, name) in ptrs)
            Debug.Assert(!ptr.IsNull && ptr.Address % sizeof(float) == 0, $"{op}: {name}={ptr} is null or not 4-byte aligned");
        return true;
    }

    private static void Launch(IGpuDevice dev, string kernel, long n, ReadOnlySpan<nint> args)
    {
        var plan = LaunchPlans.GridStride(n, DeviceLimits.For(dev));
        dev.Launch(dev.GetKernel(kernel), plan.Grid, plan.Block, plan.SmemDynamic, args);
    }
}
