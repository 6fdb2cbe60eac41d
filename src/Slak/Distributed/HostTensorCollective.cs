// ITensorCollective over host buffers: the values are copied to host memory, widened to float64, summed over the ranks
// by MPI (MpiCollectives.StartSum: MPI_Iallreduce, completed by polling) and, for a mean, multiplied by 1/ranks and
// rounded to float32 once, then copied back. Works for every device; on a GPU each reduction costs a download and an
// upload (and the download waits for the work queued before it).
namespace Slak.Distributed;

/// <summary>Reductions of tensors through host memory over <see cref="ICollectives"/>.</summary>
internal sealed class HostTensorCollective : ITensorCollective
{
    private readonly ICollectives _collectives;
    private readonly Dictionary<long, Stack<double[]>> _free = [];

    /// <summary>Reduces over <paramref name="collectives"/>; <paramref name="library"/> names the MPI
    /// library.</summary>
    public HostTensorCollective(ICollectives collectives, string library)
    {
        ArgumentNullException.ThrowIfNull(collectives);
        _collectives = collectives;
        Description = $"MPI on host buffers ({library})";
    }

    /// <inheritdoc />
    public string Description { get; }

    /// <inheritdoc />
    public bool OnDevice => false;

    /// <inheritdoc />
    public IPendingReduction StartAverage(Tensor values, string what)
    {
        ArgumentNullException.ThrowIfNull(values);
        var host = values.ToArray();
        var send = Rent(host.Length);
        var result = Rent(host.Length);
        for (int i = 0; i < host.Length; i++) send[i] = host[i];
        var inner = _collectives.StartSum(send, result, what);
        return new Pending(this, inner, values, send, result);
    }

    /// <inheritdoc />
    public void Sum(Tensor values, string what)
    {
        ArgumentNullException.ThrowIfNull(values);
        var host = values.ToArray();
        var sums = new double[host.Length];
        for (int i = 0; i < host.Length; i++) sums[i] = host[i];
        _collectives.Sum(sums, what);
        for (int i = 0; i < host.Length; i++) host[i] = (float)sums[i];
        values.Backend.CopyFromHost(host, values);
    }

    private double[] Rent(long length) => _free.TryGetValue(length, out var stack) && stack.Count > 0
        ? stack.Pop() : GC.AllocateArray<double>(checked((int)length), pinned: true);

    private void Return(double[] buffer)
    {
        if (!_free.TryGetValue(buffer.Length, out var stack)) _free[buffer.Length] = stack = new Stack<double[]>();
        stack.Push(buffer);
    }

    /// <summary>The MPI request, then the mean written back into the tensor.</summary>
    private sealed class Pending(HostTensorCollective owner, IPendingReduction inner, Tensor values, double[] send, double[] result)
        : IPendingReduction
    {
        private bool _done;

        public bool Poll() => _done || inner.Poll();

        public void Wait()
        {
            if (_done) return;
            inner.Wait();
            _done = true;
            double scale = 1.0 / owner._collectives.Size;
            var mean = new float[result.Length];
            for (int i = 0; i < mean.Length; i++) mean[i] = (float)(result[i] * scale);
            values.Backend.CopyFromHost(mean, values);
            owner.Return(send);
            owner.Return(result);
        }
    }
}
