// Base class of every network part. Parameters, buffers and children are registered explicitly, by name, in the
// order PyTorch would list them, so StateDict() keys and order equal the reference implementation's state_dict
// (style.md §4.11: no reflection-based discovery). Train()/Eval() reach every descendant.
namespace Slak.NN;

/// <summary>A network module with named parameters, buffers and child modules.</summary>
public abstract class Module
{
    private readonly List<(string Name, Tensor Tensor)> _parameters = [];
    private readonly List<(string Name, Tensor Tensor)> _buffers = [];
    private readonly List<(string Name, Module Module)> _children = [];

    /// <summary>True in training mode (BatchNorm uses batch statistics, DropPath is active).</summary>
    public bool Training { get; private set; } = true;

    /// <summary>Registers a trainable parameter (sets RequiresGrad and its name) and returns it.</summary>
    protected Tensor RegisterParameter(string name, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        EnsureNew(name);
        tensor.RequiresGrad = true;
        tensor.Name ??= name;
        _parameters.Add((name, tensor));
        return tensor;
    }

    /// <summary>Registers a non-trainable buffer (running statistics) and returns it.</summary>
    protected Tensor RegisterBuffer(string name, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        EnsureNew(name);
        tensor.Name ??= name;
        _buffers.Add((name, tensor));
        return tensor;
    }

    /// <summary>Registers a child module and returns it.</summary>
    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        ArgumentNullException.ThrowIfNull(module);
        EnsureNew(name);
        _children.Add((name, module));
        return module;
    }

    private void EnsureNew(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.', StringComparison.Ordinal))
            throw new ArgumentException($"invalid member name '{name}'", nameof(name));
        if (_parameters.Any(p => p.Name == name) || _buffers.Any(b => b.Name == name)
            || _children.Any(c => c.Name == name))
            throw new ArgumentException($"{GetType().Name} already has a member named '{name}'", nameof(name));
    }

    /// <summary>Direct children, in registration order.</summary>
    public IEnumerable<(string Name, Module Module)> Children() => _children;

    /// <summary>All parameters with dotted names, depth-first in registration order.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedParameters(string prefix = "")
    {
        foreach (var (name, t) in _parameters) yield return (prefix + name, t);
        foreach (var (name, child) in _children)
            foreach (var item in child.NamedParameters(prefix + name + ".")) yield return item;
    }

    /// <summary>All buffers with dotted names.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedBuffers(string prefix = "")
    {
        foreach (var (name, t) in _buffers) yield return (prefix + name, t);
        foreach (var (name, child) in _children)
            foreach (var item in child.NamedBuffers(prefix + name + ".")) yield return item;
    }

    /// <summary>All parameters.</summary>
    public IEnumerable<Tensor> Parameters()
    {
        // The order of NamedParameters, without building every name (the trainer walks the parameters every step:
        // the model's device, gradient clipping, data-parallel gradient averaging).
        foreach (var (_, t) in _parameters) yield return t;
        foreach (var (_, child) in _children)
            foreach (var t in child.Parameters()) yield return t;
    }

    /// <summary>Parameters and buffers in PyTorch state_dict order (own parameters, own buffers, then
    /// children).</summary>
    public IEnumerable<(string Name, Tensor Tensor)> StateDict(string prefix = "")
    {
        foreach (var (name, t) in _parameters) yield return (prefix + name, t);
        foreach (var (name, t) in _buffers) yield return (prefix + name, t);
        foreach (var (name, child) in _children)
            foreach (var item in child.StateDict(prefix + name + ".")) yield return item;
    }

    /// <summary>Every module in the tree with its dotted name ("" for this one).</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules(string prefix = "")
    {
        yield return (prefix.TrimEnd('.'), this);
        foreach (var (name, child) in _children)
            foreach (var item in child.NamedModules(prefix + name + ".")) yield return item;
    }

    /// <summary>Sets training mode on this module and every descendant.</summary>
    public void Train(bool training = true)
    {
        Training = training;
        foreach (var (_, child) in _children) child.Train(training);
    }

    /// <summary>Evaluation mode (same as Train(false)).</summary>
    public void Eval() => Train(false);

    /// <summary>Moves all parameters and buffers to <paramref name="device"/> in place.</summary>
    public void To(Device device)
    {
        foreach (var (_, t) in StateDict()) t.MoveTo(device);
    }

    /// <summary>Drops every parameter's gradient.</summary>
    public void ZeroGrad()
    {
        // A plain walk of the tree (no enumerators, no names): it runs once per training step.
        foreach (var (_, t) in _parameters) t.ZeroGrad();
        foreach (var (_, child) in _children) child.ZeroGrad();
    }

    /// <summary>Number of trainable elements.</summary>
    public long ParameterCount() => Parameters().Sum(p => p.Numel);

    /// <summary>The module's computation on one input. Containers and single-input layers override it; modules with
    /// other signatures throw.</summary>
    public virtual Tensor Forward(Tensor input) =>
        throw new NotSupportedException($"{GetType().Name} has no single-input Forward");

    /// <summary>Called on every module of a tree after its state was loaded (buffers may carry host-side mirrors,
    /// e.g. BatchNorm's batch counter).</summary>
    protected internal virtual void OnStateLoaded()
    {
    }

    /// <summary>True when any parameter or buffer of the tree is a shape-only placeholder (built with
    /// <see cref="ModuleInit.ShapeOnly"/>): names and shapes are real, there is no data to compute with.</summary>
    public bool IsShapeOnly => StateDict().Any(e => !e.Tensor.IsDisposed && MetaStorage.IsMeta(e.Tensor));
}
