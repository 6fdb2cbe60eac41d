// Reverse-mode differentiation over the recorded graph (micrograd's algorithm at tensor granularity): order nodes
// topologically from the root, seed d(root) = 1, run each node's closure once in reverse order, accumulate gradients
// of shared inputs out of place (closures return fresh tensors or Detach() views), add leaf gradients into
// Tensor.Grad (allocated outside any TensorScope, since they outlive the
// step), then release every node so saved activations can be freed.
namespace Slak.Autograd;

/// <summary>Runs backward passes.</summary>
public static class AutogradEngine
{
    /// <summary>Records <paramref name="output"/> as produced by <paramref name="op"/> from <paramref name="inputs"/>
    /// when grad mode is on and any input requires grad. Returns <paramref name="output"/>.</summary>
    public static Tensor Record(Tensor output, string op, Tensor[] inputs, BackwardFunction backward)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (!GradMode.IsEnabled) return output;
        bool any = false;
        foreach (var t in inputs) any |= t.RequiresGrad;
        if (!any) return output;
        output.GradFn = new GradNode(op, inputs, backward);
        output.RequiresGrad = true;
        return output;
    }

    /// <summary>True when an operator on <paramref name="inputs"/> would be recorded.</summary>
    public static bool WillRecord(params Tensor?[] inputs)
    {
        if (!GradMode.IsEnabled) return false;
        foreach (var t in inputs) if (t is not null && t.RequiresGrad) return true;
        return false;
    }

    /// <summary>Back-propagates from a one-element <paramref name="root"/>.</summary>
    public static void Backward(Tensor root)
    {
        ArgumentNullException.ThrowIfNull(root);
        if (root.Numel != 1)
            throw new InvalidOperationException($"Backward() needs a scalar (one-element) tensor; got {root.Describe()}");
        if (!root.RequiresGrad)
            throw new InvalidOperationException($"Backward() on {root.Describe()}, which does not require grad (no parameter or input on its path has RequiresGrad)");

        List<Tensor> order;
        using (OpProfiler.Measure("autograd.topo")) order = TopologicalOrder(root);
        var grads = new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance)
        {
            [root] = Tensor.Full(root.Shape, 1f, root.Device),
        };

        using (GradMode.NoGrad())
        {
            for (int i = order.Count - 1; i >= 0; i--)
            {
                var tensor = order[i];
                if (!grads.Remove(tensor, out var grad)) continue;
                var node = tensor.GradFn;
                if (node is null)
                {
                    using (OpProfiler.Measure("autograd.leaf")) AccumulateLeaf(tensor, grad);
                    continue;
                }
                var fn = node.Backward ?? throw new InvalidOperationException(
                    $"Trying to backward through the graph a second time (node {node.Op} of {tensor.Describe()} was already freed); call Backward() once per forward pass");
                Tensor?[] inputGrads;
                using (OpProfiler.MeasureBackward(node.Op, grad)) inputGrads = fn(grad);
                grad.Dispose();
                var inputs = node.Inputs;
                if (inputGrads.Length != inputs.Length)
                    throw new InvalidOperationException($"backward of {node.Op} returned {inputGrads.Length} gradients for {inputs.Length} inputs");
                for (int k = 0; k < inputs.Length; k++)
                {
                    var input = inputs[k];
                    var g = inputGrads[k];
                    if (g is null || !input.RequiresGrad) { g?.Dispose(); continue; }
                    if (!Shapes.Equal(g.Shape, input.Shape))
                        throw new InvalidOperationException($"backward of {node.Op}: gradient {Shapes.Format(g.Shape)} does not match input {input.Describe()}");
                    if (grads.TryGetValue(input, out var existing))
                    {
                        // Out of place: gradients returned by backward closures may be views sharing storage
                        // with other pending gradients, so none is ever modified in place.
                        using var profile = OpProfiler.MeasureBackward("autograd.accumulate", existing);
                        var sum = Tensor.Empty(existing.Shape, existing.Device);
                        sum.Backend.Add(existing, g, sum);
                        existing.Dispose();
                        g.Dispose();
                        grads[input] = sum;
                    }
                    else grads[input] = g;
                }
                node.Release();
            }
        }
    }

    private static void AccumulateLeaf(Tensor leaf, Tensor grad)
    {
        if (!leaf.RequiresGrad) { grad.Dispose(); return; }
        if (leaf.Grad is null)
        {
            using (TensorScope.Untracked())
            {
                var owned = Tensor.Empty(leaf.Shape, leaf.Device);
                owned.Backend.Copy(grad, owned);
                leaf.Grad = owned;
            }
        }
        else leaf.Grad.Backend.AddScaled(leaf.Grad, grad, 1f);
        grad.Dispose();
    }

    private static List<Tensor> TopologicalOrder(Tensor root)
    {
        var order = new List<Tensor>();
        var visited = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(Tensor T, bool Expanded)>();
        stack.Push((root, false));
        while (stack.Count > 0)
        {
            var (t, expanded) = stack.Pop();
            if (expanded) { order.Add(t); continue; }
            if (!visited.Add(t)) continue;
            stack.Push((t, true));
            var node = t.GradFn;
            if (node is null) continue;
            if (node.Backward is null)
                throw new InvalidOperationException(
                    $"Trying to backward through the graph a second time (node {node.Op} of {t.Describe()} was already freed); call Backward() once per forward pass");
            foreach (var input in node.Inputs)
                if (input.RequiresGrad && !visited.Contains(input)) stack.Push((input, false));
        }
        return order;
    }
}
