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
