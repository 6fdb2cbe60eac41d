// nn.Sequential: a ModuleList whose Forward chains its children.
namespace Slak.NN;

/// <summary>Applies its children in order.</summary>
public sealed class Sequential : ModuleList
{
    /// <summary>Creates the chain.</summary>
    public Sequential(params IEnumerable<Module> modules) : base(modules)
    {
    }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        var x = input;
        foreach (var m in Items) x = m.Forward(x);
        return x;
    }
}
