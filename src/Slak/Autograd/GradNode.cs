// One recorded operation of the define-by-run graph: its inputs and a closure that maps the gradient of its single
// output to gradients of its inputs (null where an input needs none). The closure is dropped when backward has run
// through the node, which frees the saved activations and makes a second backward fail loudly.
namespace Slak.Autograd;

/// <summary>Maps d(loss)/d(output) to d(loss)/d(inputs); entries may be null for inputs that need no gradient.</summary>
public delegate Tensor?[] BackwardFunction(Tensor gradOutput);

/// <summary>A node of the autograd graph.</summary>
public sealed class GradNode
{
    internal GradNode(string op, Tensor[] inputs, BackwardFunction backward)
    {
        Op = op;
        Inputs = inputs;
        Backward = backward;
    }

    /// <summary>Operator name (for messages).</summary>
    public string Op { get; }

    /// <summary>The operator's tensor inputs, in the order the backward function returns their gradients.</summary>
    internal Tensor[] Inputs { get; private set; }

    /// <summary>The backward closure; null once consumed.</summary>
    internal BackwardFunction? Backward { get; private set; }

    /// <summary>Drops the closure and the inputs (frees saved tensors).</summary>
    internal void Release()
    {
        Backward = null;
        Inputs = [];
    }
}
