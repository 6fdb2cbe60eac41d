// A tiny classifier for trainer/sparse tests, independent of the SLaK model family: conv stem (rank 4), depthwise
// conv (rank 4, maskable in the kernel), a hidden linear layer (rank 2), LayerNorm (rank 1), head (rank 2), with
// drop path so that the model generator matters for resume tests. Parameter names follow the dotted style.
using NUnit.Framework;
using Slak.Data;
using Slak.NN;
using Slak.Train;

namespace Slak.Tests.Train;

internal sealed class TinyNet : Module
{
    private sealed class Holder : Module
    {
        public Tensor Add(string name, Tensor t, bool parameter = true) => parameter ? RegisterParameter(name, t) : RegisterBuffer(name, t);
    }

    private readonly Tensor _stemW, _stemB, _dwW, _fcW, _fcB, _lnW, _lnB, _headW, _headB;

    public TinyNet(SlakRandom init, SlakRandom random, int channels = 1, int classes = 4, int width = 8, float dropPath = 0.1f)
    {
        Random = random;
        DropPathRate = dropPath;
        var stem = RegisterModule("stem", new Holder());
        _stemW = stem.Add("weight", Tensor.RandN(init, [width, channels, 3, 3], Device.Cpu, 0, 0.3f));
        _stemB = stem.Add("bias", Tensor.Zeros(width));
        var dw = RegisterModule("dw", new Holder());
        _dwW = dw.Add("weight", Tensor.RandN(init, [width, 1, 3, 3], Device.Cpu, 0, 0.3f));
        var fc = RegisterModule("fc", new Holder());
        _fcW = fc.Add("weight", Tensor.RandN(init, [2 * width, width], Device.Cpu, 0, 0.3f));
        _fcB = fc.Add("bias", Tensor.Zeros(2 * width));
        var norm = RegisterModule("norm", new Holder());
        _lnW = norm.Add("weight", Tensor.Ones([2 * width], Device.Cpu));
        _lnB = norm.Add("bias", Tensor.Zeros(2 * width));
        var head = RegisterModule("head", new Holder());
        _headW = head.Add("weight", Tensor.RandN(init, [classes, 2 * width], Device.Cpu, 0, 0.3f));
        _headB = head.Add("bias", Tensor.Zeros(classes));
    }

    public SlakRandom Random { get; }

    public float DropPathRate { get; }

    public Tensor? DwMask { get; set; }

    public override Tensor Forward(Tensor x)
    {
        var h = F.Gelu(F.Conv2d(x, _stemW, _stemB, 1, 1));
        var d = F.DepthwiseConv2d(h, _dwW, DwMask);
        h = F.Add(h, F.DropPath(d, DropPathRate, Training, Random));
        var pooled = F.GlobalAvgPool(F.Gelu(h));
        var z = F.LayerNorm(F.Linear(pooled, _fcW, _fcB), _lnW, _lnB, 1e-5f);
        return F.Linear(F.Gelu(z), _headW, _headB);
    }

    public static TrainableModel Make(ulong seed, float dropPath = 0.1f, Func<Tensor, Tensor>? wrap = null)
    {
        var net = new TinyNet(new SlakRandom(seed), new SlakRandom(seed + 1), dropPath: dropPath);
        Func<Tensor, Tensor> forward = wrap is null ? net.Forward : x => wrap(net.Forward(x));
        return new TrainableModel(net, forward, net.Random, "{\"model\": \"tiny\"}")
        {
            MaskBinder = (name, mask) => { if (name == "dw.weight") net.DwMask = mask; },
        };
    }

    /// <summary>A learnable synthetic set (the tiny net pools globally, so the class must show in the image
    /// statistics): class k has brightness 0.15 + 0.2 k, plus noise and a brighter quadrant k.</summary>
    public static ImageDataset Synthetic(int count, ulong seed, int size = 8)
    {
        var rng = new SlakRandom(seed);
        var images = new float[count * size * size];
        var labels = new int[count];
        int half = size / 2;
        for (int i = 0; i < count; i++)
        {
            int k = rng.NextInt(4);
            labels[i] = k;
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                {
                    bool on = (y < half ? 0 : 2) + (x < half ? 0 : 1) == k;
                    float v = 0.15f + 0.2f * k + (on ? 0.1f : 0f) + 0.1f * rng.NextNormal();
                    images[i * size * size + y * size + x] = Math.Clamp(v, 0f, 1f);
                }
        }
        return new ImageDataset(images, labels, 1, size, size, 4);
    }
}
