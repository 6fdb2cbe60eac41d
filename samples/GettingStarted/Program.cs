// The guide's first example (docs/csharp.md, "First steps"): tensors in a scope, the decomposed large-kernel
// depthwise convolution with a sparse mask, backward, on the CPU and on the CUDA kernels' host emulator. It runs
// from the NuGet packages alone (no checkout, no cmake): CI creates a fresh console project, adds the package from
// the local feed that tools/pack.sh writes, copies this file in and runs it.
// #region first-steps
using Slak;

var rng = new SlakRandom(seed: 0);
foreach (var device in new[] { Device.Cpu, Device.CudaEmu })
{
    // Every tensor created inside the scope is disposed at its end (device memory is freed deterministically).
    using var scope = TensorScope.Begin();

    // x: (N, C, H, W). SLaK's large kernel: a 13 x 3 and a 3 x 13 depthwise branch (one filter per channel).
    var x = Tensor.RandN(rng, [2, 4, 12, 12], device);
    var wLong = Tensor.RandN(rng, [4, 1, 13, 3], device, std: 0.1f);
    var wWide = Tensor.RandN(rng, [4, 1, 3, 13], device, std: 0.1f);
    x.RequiresGrad = wLong.RequiresGrad = wWide.RequiresGrad = true;

    // A 60 %-dense mask on the first branch (1 = live weight, 0 = pruned); the second branch is dense (null).
    var keep = new float[4 * 13 * 3];
    for (int i = 0; i < keep.Length; i++) keep[i] = rng.NextDouble() < 0.6 ? 1f : 0f;
    var mask = Tensor.FromArray(keep, [4, 1, 13, 3], device);

    // One output per branch; SLaK sums them (after a BatchNorm each).
    var ys = F.DecomposedDepthwiseConv2d(x, [wLong, wWide], [mask, null]);
    var loss = F.Sum(F.Add(ys[0], ys[1]));
    loss.Backward();

    // Pruned weights get no gradient: our sparse semantics keep them (and their optimizer state) exactly zero.
    var g = wLong.Grad!.ToArray();
    int prunedWithGradient = Enumerable.Range(0, g.Length).Count(i => keep[i] == 0f && g[i] != 0f);
    Console.WriteLine($"{device}: loss {loss.ToArray()[0]:F4}, |dL/dx| {Norm(x.Grad!.ToArray()):F4}, " +
                      $"pruned taps with a gradient: {prunedWithGradient}");
}

static double Norm(float[] v) => Math.Sqrt(v.Sum(e => (double)e * e));
// #endregion

KernelApi();

// #region kernel-api
// The kernels without tensors: typed device buffers and one checked entry point per kernel family. On "cuda" this
// runs on the GPU; "cuda-emu" runs the same kernels on the host emulator.
static void KernelApi()
{
    using var gpu = Slak.Cuda.Runtime.GpuDevices.Open("cuda-emu");
    var shape = new Slak.Cuda.Kernels.DwConvShape(N: 1, C: 2, H: 9, W: 9);
    var rng = new SlakRandom(seed: 7);
    float[] Random(long n) => Enumerable.Range(0, (int)n).Select(_ => rng.NextNormal()).ToArray();

    using var x = Slak.Cuda.Runtime.DeviceBuffer<float>.FromSpan(gpu, Random(shape.Elements));
    using var w = Slak.Cuda.Runtime.DeviceBuffer<float>.FromSpan(gpu, Random(shape.C * 7 * 3));
    using var y = new Slak.Cuda.Runtime.DeviceBuffer<float>(gpu, shape.Elements);
    var branch = new Slak.Cuda.Kernels.DwConvBranch(w, Mask: null, Kh: 7, Kw: 3);
    Console.WriteLine($"plan: {Slak.Cuda.Kernels.DecomposedDwConv.Plan(gpu, shape, [(7, 3)])}");
    Slak.Cuda.Kernels.DecomposedDwConv.Forward(gpu, shape, x, [branch], [y]);

    // The same convolution through F on the CPU agrees.
    var cpu = F.DecomposedDepthwiseConv2d(Tensor.FromArray(x.ToArray(), [1, 2, 9, 9], Device.Cpu),
                                          [Tensor.FromArray(w.ToArray(), [2, 1, 7, 3], Device.Cpu)])[0].ToArray();
    double diff = y.ToArray().Zip(cpu, (a, b) => Math.Abs(a - b)).Max();
    Console.WriteLine($"kernel API: max |kernel - F| = {diff:0.0E+0}");

    // A wrong argument is an exception that names it, never a crash.
    try { Slak.Cuda.Kernels.DecomposedDwConv.Forward(gpu, shape with { H = 10 }, x, [branch], [y]); }
    catch (ArgumentException e) { Console.WriteLine($"refused: {e.Message}"); }
}
// #endregion
