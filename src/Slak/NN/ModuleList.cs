// nn.ModuleList: children named "0", "1", ... in order (the state_dict prefixes downsample_layers.N / stages.N).
namespace Slak.NN;

/// <summary>An indexable list of registered child modules.</summary>
public class ModuleList : Module
{
    private readonly List<Module> _items = [];

    /// <summary>Creates the list from <paramref name="modules"/>.</summary>
    public ModuleList(params IEnumerable<Module> modules)
    {
        ArgumentNullException.ThrowIfNull(modules);
        foreach (var m in modules) Append(m);
    }

    /// <summary>Number of children.</summary>
    public int Count => _items.Count;

    /// <summary>Child <paramref name="index"/>.</summary>
    public Module this[int index] => index >= 0 && index < _items.Count ? _items[index]
        : throw new ArgumentOutOfRangeException(nameof(index), index, $"list has {_items.Count} modules");

    /// <summary>The children in order.</summary>
    public IReadOnlyList<Module> Items => _items;

    /// <summary>Registers <paramref name="module"/> under the next index.</summary>
    public void Append(Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        RegisterModule(_items.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), module);
        _items.Add(module);
    }
}
