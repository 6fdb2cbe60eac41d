// One sparsified parameter: its 0/1 mask on the parameter's device, which is the truth (kernels, AdamW and the
// prune/regrow round read and write it there), and its live count, kept by Masking from the values the backend
// returns, so density tables and the next round's prune count need no download. The mask comes to the host only
// when asked (MaskBytes: checkpoints, EMA, tests), and that copy is cached until the next round changes the mask.
namespace Slak.Sparse;

/// <summary>A masked parameter.</summary>
public sealed class MaskedLayer
{
    private byte[]? _hostCache;

    internal MaskedLayer(string name, Tensor parameter, Tensor mask, long live)
    {
        Name = name; Parameter = parameter; Mask = mask; Live = live;
    }

    /// <summary>The parameter's state_dict name.</summary>
    public string Name { get; }

    /// <summary>The parameter.</summary>
    public Tensor Parameter { get; }

    /// <summary>The 0/1 float mask on the parameter's device (same object for the whole run; only
    /// <see cref="Masking"/> writes it).</summary>
    public Tensor Mask { get; }

    /// <summary>Number of elements.</summary>
    public long Numel => Parameter.Numel;

    /// <summary>Number of live (mask 1) positions.</summary>
    public long Live { get; private set; }

    /// <summary>Live fraction.</summary>
    public double Density => Numel == 0 ? 1 : (double)Live / Numel;

    /// <summary>A copy of the mask on the host (1 = live); downloads it when the mask changed since the last
    /// call.</summary>
    public byte[] MaskBytes()
    {
        if (_hostCache is null)
        {
            var f = Mask.ToArray();
            var bytes = new byte[f.Length];
            for (int i = 0; i < f.Length; i++) bytes[i] = f[i] != 0 ? (byte)1 : (byte)0;
            _hostCache = bytes;
        }
        return (byte[])_hostCache.Clone();
    }

    /// <summary>Writes a host mask (0/1 bytes) into <see cref="Mask"/> and sets the live count (initialisation and
    /// checkpoint restore).</summary>
    internal void Upload(byte[] host)
    {
        var f = new float[host.Length];
        long live = 0;
        for (int i = 0; i < f.Length; i++) { f[i] = host[i]; live += host[i]; }
        Mask.Backend.CopyFromHost(f, Mask);
        Live = live;
        _hostCache = (byte[])host.Clone();
    }

    /// <summary>Records that the backend rewrote <see cref="Mask"/> and now has <paramref name="live"/> live
    /// positions.</summary>
    internal void MaskChanged(long live)
    {
        Live = live;
        _hostCache = null;
    }
}
