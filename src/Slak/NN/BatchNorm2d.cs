// nn.BatchNorm2d with PyTorch's defaults (eps 1e-5, momentum 0.1, affine, running statistics): the BN after each
// depthwise branch of SLaK's large kernel (SyncBatchNorm in the reference; one device here). num_batches_tracked is
// kept as a float scalar buffer so the state_dict key exists like in PyTorch; its count lives on the host too, so
// counting a batch costs one fill and never a device read.
namespace Slak.NN;

/// <summary>Batch normalization over (N, C, H, W).</summary>
public sealed class BatchNorm2d : Module
{
    private long _batches;

    /// <summary>Creates the layer: weight 1, bias 0, running mean 0, running variance 1.</summary>
    public BatchNorm2d(int channels, ModuleInit init, float eps = 1e-5f, float momentum = 0.1f)
    {
        ArgumentNullException.ThrowIfNull(init);
        if (channels < 1) throw new ArgumentOutOfRangeException(nameof(channels), channels, "must be >= 1");
        if (!(eps > 0)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "must be > 0");
        if (!(momentum >= 0 && momentum <= 1))
            throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "must be in [0, 1]");
        Channels = channels;
        Eps = eps;
        Momentum = momentum;
        Weight = RegisterParameter("weight", init.Constant([channels], 1f));
        Bias = RegisterParameter("bias", init.Constant([channels], 0f));
        RunningMean = RegisterBuffer("running_mean", init.Constant([channels], 0f));
        RunningVar = RegisterBuffer("running_var", init.Constant([channels], 1f));
        NumBatchesTracked = RegisterBuffer("num_batches_tracked", init.Constant([], 0f));
    }

    /// <summary>Channels C.</summary>
    public int Channels { get; }

    /// <summary>Epsilon added to the variance.</summary>
    public float Eps { get; }

    /// <summary>Running-statistics momentum.</summary>
    public float Momentum { get; }

    /// <summary>Scale (C).</summary>
    public Tensor Weight { get; }

    /// <summary>Shift (C).</summary>
    public Tensor Bias { get; }

    /// <summary>Running mean (C).</summary>
    public Tensor RunningMean { get; }

    /// <summary>Running (unbiased) variance (C).</summary>
    public Tensor RunningVar { get; }

    /// <summary>Number of training batches seen, shape () (float; PyTorch stores int64).</summary>
    public Tensor NumBatchesTracked { get; }

    /// <summary>Data-parallel training: when set, training statistics are taken over every rank's batch
    /// (Distributed.SyncBatchNorm, as the reference's nn.SyncBatchNorm); null: this process's batch only.</summary>
    internal Distributed.DataParallel? Sync { get; set; }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        var y = Training && Sync is not null
            ? Distributed.SyncBatchNorm.Forward(Sync, input, Weight, Bias, RunningMean, RunningVar, Momentum, Eps)
            : F.BatchNorm2d(input, Weight, Bias, RunningMean, RunningVar, Training, Momentum, Eps);
        if (Training) CountTrainingBatch();
        return y;
    }

    /// <summary>Counts one training batch in num_batches_tracked (also called by operators that run this layer's
    /// training forward fused with others: ReparamLargeKernelConv's sum of BatchNorms).</summary>
    internal void CountTrainingBatch()
    {
        _batches++;
        NumBatchesTracked.Backend.Fill(NumBatchesTracked, _batches);
    }

    /// <inheritdoc />
    protected internal override void OnStateLoaded() => _batches = (long)NumBatchesTracked.Item();
}
