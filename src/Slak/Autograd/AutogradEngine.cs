// Reverse-mode differentiation over the recorded graph (micrograd's algorithm at tensor granularity, with nodes that
// may have several outputs).
//
// The ordering contract, which operators may rely on:
//   - the vertices are the graph's nodes and its leaf tensors; a node's edges go to the nodes (or leaves) that
//     produced its inputs;
//   - every node reachable from the root runs its backward closure exactly once, and only after the closure of every
//     node that consumed any of its outputs has run, so the gradient of each output is complete (summed over all its
//     consumers) when the closure receives it;
//   - the closure receives one gradient per output, null for an output through which no gradient flowed; it is not
//     called at all when no output received a gradient;
//   - gradients of shared inputs are accumulated out of place (closures return fresh tensors or Detach() views that
//     may share storage, so none is ever modified in place); leaf gradients are added into Tensor.Grad (allocated
//     outside any TensorScope, since they outlive the step: a leaf's first gradient of a pass is adopted, i.e. a new
//     untracked view of its memory, when no other tensor shares that memory, else copied);
//   - every node is released afterwards (closure and inputs dropped), so saved activations can be freed and a second
//     backward through the same graph fails loudly.
// A leaf's gradient is added into Tensor.Grad as soon as the last node that consumes it (in this pass's order) has
// run, not when the walk reaches the leaf's own vertex (which depth-first order puts after its consumer's whole input
// subtree, i.e. at the end of the pass). The values are the same either way; only the time differs.
// Gradient-ready hook (data-parallel overlap, Distributed.GradientBuckets): OnLeafGradient(callback) makes every
// backward pass run on this thread, until the returned scope is disposed, call callback(leaf) right after a leaf's
// gradient of the pass was added into leaf.Grad. At that point the leaf's gradient is final for the pass: every node
// that consumed it has run and nothing else is added to it in this pass. Leaves that receive no gradient in the pass
// are not reported. Across passes (gradient accumulation) the caller knows which pass is the last one.
// Profiling happens here, not in the operators: each closure is one "<op>.bwd" region, and the backend calls it makes
// are measured by the profiling backend (ProfilingBackend), named "bwd <method>" because the engine tells the profiler
// that a backward pass runs (the profiler and the backends know nothing of the engine), so no operator can be missed.
using System.Diagnostics;
using Slak.Diagnostics;

namespace Slak.Autograd;

/// <summary>Runs backward passes.</summary>
internal static class AutogradEngine
{
    [ThreadStatic]
    private static Action<Tensor>? _leafReady;

    /// <summary>Calls <paramref name="callback"/> with each leaf whose gradient became final, in the backward passes
    /// run on this thread until the returned scope is disposed (see the file header).</summary>
    public static IDisposable OnLeafGradient(Action<Tensor> callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var previous = _leafReady;
        _leafReady = callback;
        return new LeafHookScope(previous);
    }

    private sealed class LeafHookScope(Action<Tensor>? previous) : IDisposable
    {
        public void Dispose() => _leafReady = previous;
    }

    /// <summary>Records <paramref name="output"/> as produced by <paramref name="op"/> from <paramref name="inputs"/>
    /// when grad mode is on and any input requires grad. Returns <paramref name="output"/>.</summary>
    public static Tensor Record(Tensor output, string op, Tensor[] inputs, BackwardFunction backward)
    {
        Debug.Assert(output is not null && backward is not null, $"{op}: output and backward are required");
        Record([output], op, inputs, grads => backward(grads[0]!));
        return output;
    }

    /// <summary>Records <paramref name="outputs"/> as the outputs of ONE node of <paramref name="op"/> on
    /// <paramref name="inputs"/> when grad mode is on and any input requires grad; the closure receives every output's
    /// gradient at once.</summary>
    public static void Record(Tensor[] outputs, string op, Tensor[] inputs, MultiBackwardFunction backward)
    {
        // The operators of Slak.F (the public edge) call this after validating their arguments: invariants only.
        Debug.Assert(outputs is { Length: > 0 } && inputs is not null && backward is not null,
                     $"{op}: a node needs at least one output, its inputs and a backward closure");
        if (!WillRecord(inputs)) return;
        var node = new GradNode(op, inputs, outputs.Length, backward);
        for (int i = 0; i < outputs.Length; i++)
        {
            outputs[i].GradFn = node;
            outputs[i].GradOutputIndex = i;
            outputs[i].RequiresGrad = true;
        }
    }

    /// <summary>True when an operator on <paramref name="inputs"/> would be recorded.</summary>
    public static bool WillRecord(params Tensor?[] inputs)
    {
        if (!GradMode.IsEnabled) return false;
        foreach (var t in inputs) if (t is not null && t.RequiresGrad) return true;
        return false;
    }

    /// <summary>Back-propagates from <paramref name="root"/>, seeded with <paramref name="gradient"/> (d(loss)/d(root),
    /// shaped like the root); without one the root must have one element and the seed is 1.</summary>
    public static void Backward(Tensor root, Tensor? gradient = null)
    {
        ArgumentNullException.ThrowIfNull(root);
        if (gradient is null && root.Numel != 1)
            throw new InvalidOperationException($"Backward() needs a scalar (one-element) tensor, or a gradient shaped like the output (Backward(gradient)); got {root.Describe()}");
        if (gradient is not null)
        {
            if (gradient.IsDisposed) throw new ObjectDisposedException(nameof(gradient), "Backward(gradient): the gradient tensor is disposed");
            if (!Shapes.Equal(gradient.Shape, root.Shape))
                throw new ArgumentException($"Backward(gradient): gradient {gradient.Describe()} must have the shape of the output {root.Describe()}", nameof(gradient));
            if (gradient.Device != root.Device)
                throw new ArgumentException($"Backward(gradient): gradient is on {gradient.Device}, the output on {root.Device}", nameof(gradient));
        }
        if (!root.RequiresGrad)
            throw new InvalidOperationException($"Backward() on {root.Describe()}, which does not require grad (no parameter or input on its path has RequiresGrad)");

        List<Vertex> order;
        List<Tensor>?[] leavesAfter;
        using (OpProfiler.Measure("autograd.topo"))
        {
            order = TopologicalOrder(root);
            leavesAfter = LeavesByLastConsumer(order);
        }
        var pending = new Dictionary<GradNode, Tensor?[]>(ReferenceEqualityComparer.Instance);
        var leafGrads = new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance);

        using (GradMode.NoGrad())
        using (OpProfiler.InBackward())
        {
            var seed = Tensor.Empty(root.Shape, root.Device);
            if (gradient is null) seed.Backend.Fill(seed, 1f);
            else seed.Backend.Copy(gradient, seed);
            Deliver(root, seed, "Backward", pending, leafGrads);

            for (int i = order.Count - 1; i >= 0; i--)
            {
                var v = order[i];
                if (v.Node is null)
                {
                    FinishLeaf(v.Leaf!, leafGrads);
                    continue;
                }
                var node = v.Node;
                if (!pending.Remove(node, out var grads))
                {
                    node.Release();
                    foreach (var leaf in leavesAfter[i] ?? []) FinishLeaf(leaf, leafGrads);
                    continue;
                }
                var fn = node.Backward ?? throw SecondBackward(node, root);
                Tensor?[] inputGrads;
                using (OpProfiler.MeasureBackward(node.Op, FirstNonNull(grads)))
                    inputGrads = fn(grads);
                foreach (var g in grads) g?.Dispose();
                var inputs = node.Inputs;
                if (inputGrads.Length != inputs.Length)
                    throw new InvalidOperationException($"backward of {node.Op} returned {inputGrads.Length} gradients for {inputs.Length} inputs");
                for (int k = 0; k < inputs.Length; k++)
                {
                    var g = inputGrads[k];
                    if (g is null) continue;
                    if (!inputs[k].RequiresGrad) { g.Dispose(); continue; }
                    Deliver(inputs[k], g, node.Op, pending, leafGrads);
                }
                node.Release();
                foreach (var leaf in leavesAfter[i] ?? []) FinishLeaf(leaf, leafGrads);
            }
        }
    }

    /// <summary>Adds the pending gradient of <paramref name="leaf"/> (if any) into its Tensor.Grad and reports it to
    /// the gradient-ready hook.</summary>
    private static void FinishLeaf(Tensor leaf, Dictionary<Tensor, Tensor> leafGrads)
    {
        if (!leafGrads.Remove(leaf, out var g)) return;
        using (OpProfiler.Measure("autograd.leaf")) AccumulateLeaf(leaf, g);
        _leafReady?.Invoke(leaf);
    }

    /// <summary>For each position of <paramref name="order"/>, the leaves whose last consumer (the consumer that runs
    /// last: the lowest position) is the node there.</summary>
    private static List<Tensor>?[] LeavesByLastConsumer(List<Vertex> order)
    {
        var result = new List<Tensor>?[order.Count];
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < order.Count; i++)
            if (order[i].Node is { } node)
                foreach (var input in node.Inputs)
                    if (input.GradFn is null && input.RequiresGrad && seen.Add(input)) (result[i] ??= []).Add(input);
        return result;
    }

    /// <summary>Adds <paramref name="g"/> to the pending gradient of <paramref name="target"/> (its producing node's
    /// output slot, or the leaf's entry), out of place.</summary>
    private static void Deliver(Tensor target, Tensor g, string op, Dictionary<GradNode, Tensor?[]> pending,
        Dictionary<Tensor, Tensor> leafGrads)
    {
        if (!Shapes.Equal(g.Shape, target.Shape))
            throw new InvalidOperationException($"backward of {op}: gradient {Shapes.Format(g.Shape)} does not match input {target.Describe()}");
        var node = target.GradFn;
        if (node is null)
        {
            leafGrads[target] = leafGrads.Remove(target, out var had) ? Sum(had, g) : g;
            return;
        }
        if (!pending.TryGetValue(node, out var slots)) pending[node] = slots = new Tensor?[node.OutputCount];
        int i = target.GradOutputIndex;
        slots[i] = slots[i] is { } existing ? Sum(existing, g) : g;
    }

    private static Tensor Sum(Tensor a, Tensor b)
    {
        using var profile = OpProfiler.MeasureBackward("autograd.accumulate", a);
        var sum = Tensor.Empty(a.Shape, a.Device);
        sum.Backend.Add(a, b, sum);
        a.Dispose();
        b.Dispose();
        return sum;
    }

    private static Tensor FirstNonNull(Tensor?[] grads)
    {
        foreach (var g in grads) if (g is not null) return g;
        throw new InvalidOperationException("a pending node without any gradient");
    }

    /// <summary>Whether a leaf's first gradient of a pass is adopted as its Tensor.Grad when nothing else holds that
    /// gradient's memory (the default), instead of copied into a fresh tensor (<c>SLAK_LEAF_GRAD_ADOPT=0</c>, the
    /// path before issue 27, for before/after comparisons: <c>step-fixed-costs</c>). The values are the same bits
    /// either way.</summary>
    internal static bool AdoptLeafGradients { get; set; } =
        Environment.GetEnvironmentVariable("SLAK_LEAF_GRAD_ADOPT") != "0";

    private static void AccumulateLeaf(Tensor leaf, Tensor grad)
    {
        if (!leaf.RequiresGrad) { grad.Dispose(); return; }
        if (leaf.Grad is null)
        {
            using (TensorScope.Untracked())
                leaf.Grad = AdoptLeafGradients && OwnsItsStorage(grad) ? grad.Detach() : CopyOf(grad, leaf);
        }
        else leaf.Grad.Backend.AddScaled(leaf.Grad, grad, 1f);
        grad.Dispose();
    }

    /// <summary>True when <paramref name="t"/> is the only tensor on its storage and covers all of it: a new view of
    /// it can then become the leaf's gradient (outliving the step's scope, which disposes only <paramref name="t"/>)
    /// without a copy, and no other tensor can see the gradient change when later passes add into it.</summary>
    private static bool OwnsItsStorage(Tensor t) =>
        t.Storage.HasOneReference && t.Offset == 0 && t.Numel == t.Storage.Length;

    private static Tensor CopyOf(Tensor grad, Tensor leaf)
    {
        var owned = Tensor.Empty(leaf.Shape, leaf.Device);
        owned.Backend.Copy(grad, owned);
        return owned;
    }

    private static InvalidOperationException SecondBackward(GradNode node, Tensor of) => new(
        $"Trying to backward through the graph a second time (node {node.Op} on the path of {of.Describe()} was already freed); call Backward() once per forward pass");

    /// <summary>A vertex of the graph: a node, or a leaf tensor (Node null).</summary>
    private readonly record struct Vertex(GradNode? Node, Tensor? Leaf);

    /// <summary>Vertices in depth-first post-order from the root: every vertex comes after all vertices it reaches,
    /// so walking the list backwards visits every consumer before what it consumed.</summary>
    private static List<Vertex> TopologicalOrder(Tensor root)
    {
        var order = new List<Vertex>();
        var visited = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(Vertex V, bool Expanded)>();
        Push(root);
        while (stack.Count > 0)
        {
            var (v, expanded) = stack.Pop();
            if (expanded) { order.Add(v); continue; }
            object key = (object?)v.Node ?? v.Leaf!;
            if (!visited.Add(key)) continue;
            stack.Push((v, true));
            if (v.Node is null) continue;
            if (v.Node.Backward is null) throw SecondBackward(v.Node, root);
            foreach (var input in v.Node.Inputs)
                if (input.RequiresGrad) Push(input);
        }
        return order;

        void Push(Tensor t)
        {
            var v = new Vertex(t.GradFn, t.GradFn is null ? t : null);
            if (!visited.Contains((object?)v.Node ?? t)) stack.Push((v, false));
        }
    }
}
