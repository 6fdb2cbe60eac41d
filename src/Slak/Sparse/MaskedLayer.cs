// One sparsified parameter: its 0/1 mask on the parameter's device (what kernels and AdamW read) and a host copy
// (what prune/regrow edits), kept in sync by Masking.
namespace Slak.Sparse;

/// <summary>A masked parameter.</summary>
public sealed class MaskedLayer
{
    internal MaskedLayer(string name, Tensor parameter, Tensor mask, byte[] host)
    {
        Name = name; Parameter = parameter; Mask = mask; Host = host;
    }

    /// <summary>The parameter's state_dict name.</summary>
    public string Name { get; }

    /// <summary>The parameter.</summary>
    public Tensor Parameter { get; }

    /// <summary>The 0/1 float mask on the parameter's device (same object for the whole run).</summary>
    public Tensor Mask { get; }

    internal byte[] Host { get; }

    /// <summary>Number of elements.</summary>
    public long Numel => Parameter.Numel;

    /// <summary>Number of live (mask 1) positions.</summary>
    public long Live
    {
        get
        {
            long n = 0;
            foreach (byte b in Host) n += b;
            return n;
        }
    }

    /// <summary>Live fraction.</summary>
    public double Density => Numel == 0 ? 1 : (double)Live / Numel;

    /// <summary>A copy of the host mask (1 = live).</summary>
    public byte[] MaskBytes() => (byte[])Host.Clone();

    internal void Upload()
    {
        var f = new float[Host.Length];
        for (int i = 0; i < f.Length; i++) f[i] = Host[i];
        Mask.Backend.CopyFromHost(f, Mask);
    }
}
