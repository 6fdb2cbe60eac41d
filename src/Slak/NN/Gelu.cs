// nn.GELU (exact erf form, PyTorch's default), as a module so the block's child list matches the reference.
namespace Slak.NN;

/// <summary>Exact GELU activation.</summary>
public sealed class Gelu : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => F.Gelu(input);
}
