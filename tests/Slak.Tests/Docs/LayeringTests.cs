// The layers of Slak point one way: the autograd engine (Slak.Autograd) drives the operators, which call the
// backends (Slak.Backends.*), which run kernels and report to the profiler (Slak.Diagnostics); a backend or the
// profiler never reaches back into the engine (the engine tells the profiler which regions are backward work). This
// test reads the compiled assembly, not the sources: for every type of a lower layer (nested types such as lambda
// closures included) it collects the types named by its base type, interfaces, fields, properties, method and
// constructor signatures and every member or type token of every method body, and fails on any type of a layer above.
using System.Reflection;
using System.Reflection.Emit;
using NUnit.Framework;

namespace Slak.Tests.Docs;

public sealed class LayeringTests
{
    /// <summary>(lower layer, layer above it that it must not reference), as namespace prefixes.</summary>
    private static readonly (string Lower, string Upper)[] Rules =
    [
        ("Slak.Backends", "Slak.Autograd"),
        ("Slak.Diagnostics", "Slak.Autograd"),
    ];

    private const BindingFlags All = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance |
                                     BindingFlags.Static | BindingFlags.DeclaredOnly;

    private static readonly Dictionary<short, OpCode> OpCodesByValue =
        typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value);

    private static Type Outermost(Type t)
    {
        while (t.DeclaringType is not null) t = t.DeclaringType;
        return t;
    }

    private static bool In(Type t, string ns)
    {
        string n = Outermost(t).Namespace ?? "";
        return n == ns || n.StartsWith(ns + ".", StringComparison.Ordinal);
    }

    /// <summary>The type and, for constructed types, its element type and generic arguments.</summary>
    private static IEnumerable<Type> Expand(Type? t)
    {
        if (t is null || t.IsGenericParameter) yield break;
        if (t.HasElementType)
        {
            foreach (var e in Expand(t.GetElementType())) yield return e;
            yield break;
        }
        yield return t;
        if (t.IsConstructedGenericType)
            foreach (var a in t.GetGenericArguments())
                foreach (var e in Expand(a)) yield return e;
    }

    private static IEnumerable<Type> Signature(MethodBase m)
    {
        foreach (var p in m.GetParameters()) yield return p.ParameterType;
        if (m is MethodInfo mi) yield return mi.ReturnType;
        yield return m.DeclaringType!;
    }

    /// <summary>Every type a method body names through a member, type or token operand.</summary>
    private static IEnumerable<Type> BodyReferences(MethodBase m)
    {
        byte[]? il;
        try { il = m.GetMethodBody()?.GetILAsByteArray(); }
        catch (InvalidOperationException) { yield break; }
        if (il is null) yield break;
        var typeArgs = m.DeclaringType is { IsGenericType: true } d ? d.GetGenericArguments() : null;
        var methodArgs = m.IsGenericMethod ? m.GetGenericArguments() : null;
        for (int i = 0; i < il.Length;)
        {
            short value = il[i] == 0xFE ? (short)(0xFE00 | il[i + 1]) : il[i];
            i += il[i] == 0xFE ? 2 : 1;
            var op = OpCodesByValue[value];
            switch (op.OperandType)
            {
                case OperandType.InlineNone: break;
                case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar: i += 1; break;
                case OperandType.InlineVar: i += 2; break;
                case OperandType.InlineI8 or OperandType.InlineR: i += 8; break;
                case OperandType.InlineSwitch: i += 4 + 4 * BitConverter.ToInt32(il, i); break;
                case OperandType.InlineMethod or OperandType.InlineField or OperandType.InlineType or OperandType.InlineTok:
                    var member = m.Module.ResolveMember(BitConverter.ToInt32(il, i), typeArgs, methodArgs);
                    i += 4;
                    switch (member)
                    {
                        case Type t: yield return t; break;
                        case FieldInfo f: yield return f.FieldType; yield return f.DeclaringType!; break;
                        case MethodBase callee: foreach (var t in Signature(callee)) yield return t; break;
                    }
                    break;
                default: i += 4; break; // InlineI, InlineBrTarget, InlineString, InlineSig, ShortInlineR
            }
        }
    }

    /// <summary>Every type <paramref name="type"/> names in its declarations and method bodies.</summary>
    private static IEnumerable<Type> References(Type type)
    {
        if (type.BaseType is not null) yield return type.BaseType;
        foreach (var i in type.GetInterfaces()) yield return i;
        foreach (var f in type.GetFields(All)) yield return f.FieldType;
        foreach (var p in type.GetProperties(All)) yield return p.PropertyType;
        foreach (var m in type.GetMethods(All).Cast<MethodBase>().Concat(type.GetConstructors(All)))
        {
            foreach (var t in Signature(m)) yield return t;
            foreach (var t in BodyReferences(m)) yield return t;
        }
    }

    private static List<string> Violations(IEnumerable<Type> types, string upper) =>
        types.SelectMany(t => References(t).SelectMany(Expand).Where(r => In(r, upper))
                 .Select(r => $"{t.FullName} -> {r.FullName}"))
             .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();

    [Test]
    public void LowerLayersDoNotReferenceTheLayersAboveThem()
    {
        var types = typeof(Tensor).Assembly.GetTypes();
        foreach (var (lower, upper) in Rules)
        {
            var layer = types.Where(t => In(t, lower)).ToList();
            Assert.That(layer, Is.Not.Empty, $"no type in {lower}");
            var violations = Violations(layer, upper);
            Assert.That(violations, Is.Empty, $"{lower} must not reference {upper}:\n{string.Join('\n', violations)}");
        }
    }

    [Test]
    public void TheScanSeesReferencesInBodiesAndClosures()
    {
        // F records every operator with the engine (a call in a method body) and its backward closures capture
        // tensors in compiler-generated types: the scan must find the engine there, or the rule above proves nothing.
        var violations = Violations([typeof(F), .. typeof(F).GetNestedTypes(All)], "Slak.Autograd");
        Assert.That(violations, Has.Some.Contains("Slak.Autograd.AutogradEngine"));
    }
}
