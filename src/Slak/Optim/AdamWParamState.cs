// The optimizer state of one parameter (PyTorch's exp_avg, exp_avg_sq and step) plus its sparse mask.
namespace Slak.Optim;

/// <summary>AdamW state of one parameter.</summary>
public sealed class AdamWParamState
{
    internal AdamWParamState(string name, Tensor parameter, bool decay)
    {
        Name = name;
        Parameter = parameter;
        Decay = decay;
    }

    /// <summary>The parameter's state_dict name.</summary>
    public string Name { get; }

    /// <summary>The parameter.</summary>
    public Tensor Parameter { get; }

    /// <summary>True when weight decay applies.</summary>
    public bool Decay { get; }

    /// <summary>Number of steps taken (PyTorch's per-parameter step).</summary>
    public long Step { get; set; }

    /// <summary>First moment (null until the first step or a load).</summary>
    public Tensor? ExpAvg { get; private set; }

    /// <summary>Second moment (null until the first step or a load).</summary>
    public Tensor? ExpAvgSq { get; private set; }

    /// <summary>0/1 mask (null: dense).</summary>
    public Tensor? Mask { get; internal set; }

    internal void EnsureMoments()
    {
        if (ExpAvg is not null) return;
        using var untracked = TensorScope.Untracked();
        ExpAvg = Tensor.ZerosLike(Parameter);
        ExpAvgSq = Tensor.ZerosLike(Parameter);
    }

    /// <summary>Replaces the moments with host values (checkpoint restore).</summary>
    public void Load(ReadOnlySpan<float> expAvg, ReadOnlySpan<float> expAvgSq, long step)
    {
        if (expAvg.Length != Parameter.Numel || expAvgSq.Length != Parameter.Numel)
            throw new ArgumentException($"optimizer state for '{Name}' has {expAvg.Length}/{expAvgSq.Length} elements, "
                + $"parameter has {Parameter.Numel}", nameof(expAvg));
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, $"step of '{Name}' must be >= 0");
        EnsureMoments();
        Parameter.Backend.CopyFromHost(expAvg, ExpAvg!);
        Parameter.Backend.CopyFromHost(expAvgSq, ExpAvgSq!);
        Step = step;
    }
}
