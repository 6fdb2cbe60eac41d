// One recorded operation of the define-by-run graph: its inputs, the number of outputs it produced, and a closure
// that maps the gradients of its outputs to gradients of its inputs. An operator with several outputs (the
// decomposed depthwise convolution returns one tensor per branch) is ONE node: each output tensor points at the
// node with its output index, and the closure receives every output's gradient at once (null where none flowed).
// The closure is dropped when backward has run through the node, which frees the saved activations and makes a
// second backward fail loudly.
namespace Slak.Autograd;

/// <summary>Maps d(loss)/d(output) to d(loss)/d(inputs) for a single-output operator; entries may be null for
/// inputs that need no gradient.</summary>
internal delegate Tensor?[] BackwardFunction(Tensor gradOutput);

/// <summary>Maps d(loss)/d(outputs) (one entry per output, null where no gradient flowed to that output) to
/// d(loss)/d(inputs); entries may be null for inputs that need no gradient.</summary>
internal delegate Tensor?[] MultiBackwardFunction(IReadOnlyList<Tensor?> gradOutputs);

/// <summary>A node of the autograd graph.</summary>
internal sealed class GradNode
{
    internal GradNode(string op, Tensor[] inputs, int outputCount, MultiBackwardFunction backward)
    {
        Op = op;
        Inputs = inputs;
        OutputCount = outputCount;
        Backward = backward;
    }

    /// <summary>Operator name (for messages and the profile).</summary>
    public string Op { get; }

    /// <summary>How many tensors the operator produced (each knows its index, <c>Tensor.GradOutputIndex</c>).</summary>
    public int OutputCount { get; }

    /// <summary>The operator's tensor inputs, in the order the backward function returns their gradients.</summary>
    internal Tensor[] Inputs { get; private set; }

    /// <summary>The backward closure; null once consumed.</summary>
    internal MultiBackwardFunction? Backward { get; private set; }

    /// <summary>Drops the closure and the inputs (frees saved tensors).</summary>
    internal void Release()
    {
        Backward = null;
        Inputs = [];
    }
}
