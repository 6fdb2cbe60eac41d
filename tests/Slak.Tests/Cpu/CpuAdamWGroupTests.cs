// The CPU backend's grouped AdamW step (IBackend.AdamWStepGroup: every parameter of a step in one parallel region)
// against AdamWStep on each parameter in turn: the same bits in the weights and both moments, over three steps, for
// parameters smaller than one vector, of a few vectors, and over several of the backend's 65,536-element segments,
// with and without masks and weight decay, under both mask semantics.
using NUnit.Framework;
using Slak.Backends;
using Slak.Backends.Cpu;
using Slak.Tests.Support;

namespace Slak.Tests.Cpu;

public class CpuAdamWGroupTests
{
    [TestCase(true)]
    [TestCase(false)]
    public void GroupStepGivesThePerParameterBits(bool maskMoments)
    {
        var rng = TestRandom.ForCurrentTest();
        int[] sizes = [3, 37, 1000, 65536 * 2 + 77];
        var be = CpuBackend.Instance;
        Tensor T(float[] v) => Tensor.FromArray((float[])v.Clone(), [v.Length], Device.Cpu);
        var p0 = sizes.Select(n => rng.NormalArray(n)).ToArray();
        var masks = sizes.Select((n, i) => i % 2 == 0 ? null : rng.NormalArray(n).Select(v => v > 0 ? 1f : 0f).ToArray()).ToArray();
        // Masked weights start at 0, as the sparse engine keeps them.
        for (int i = 0; i < sizes.Length; i++)
            if (masks[i] is { } m)
                for (int j = 0; j < m.Length; j++) p0[i][j] *= m[j];
        var one = sizes.Select((_, i) => (P: T(p0[i]), M: Tensor.Zeros([sizes[i]], Device.Cpu), V: Tensor.Zeros([sizes[i]], Device.Cpu))).ToArray();
        var grouped = sizes.Select((_, i) => (P: T(p0[i]), M: Tensor.Zeros([sizes[i]], Device.Cpu), V: Tensor.Zeros([sizes[i]], Device.Cpu))).ToArray();
        for (int step = 1; step <= 3; step++)
        {
            var items = new List<AdamWItem>();
            for (int i = 0; i < sizes.Length; i++)
            {
                var g = rng.NormalArray(sizes[i]);
                var mask = masks[i] is { } mk ? T(mk) : null;
                var hyper = new AdamWHyper(1e-2f, 0.9f, 0.999f, 1e-8f, i % 3 == 0 ? 0f : 0.05f, step);
                be.AdamWStep(one[i].P, T(g), one[i].M, one[i].V, mask, hyper, maskMoments);
                items.Add(new AdamWItem(grouped[i].P, T(g), grouped[i].M, grouped[i].V, mask, hyper));
            }
            be.AdamWStepGroup(items, maskMoments);
        }
        for (int i = 0; i < sizes.Length; i++)
        {
            string what = $"parameter of {sizes[i]} elements{(masks[i] is null ? "" : ", masked")}, maskMoments {maskMoments}";
            Expect.Exactly(grouped[i].P.ToArray(), one[i].P.ToArray(), rng.Ctx(what + ": weights"));
            Expect.Exactly(grouped[i].M.ToArray(), one[i].M.ToArray(), rng.Ctx(what + ": first moment"));
            Expect.Exactly(grouped[i].V.ToArray(), one[i].V.ToArray(), rng.Ctx(what + ": second moment"));
            Assert.That(grouped[i].P.ToArray().SequenceEqual(p0[i]), Is.False, rng.Ctx(what + ": the weights moved"));
        }
    }
}
