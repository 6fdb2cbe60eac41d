// Element-wise comparison of a float32 result with a float64 reference, in the style of llm.c's validate_result:
// |actual - expected| <= atol + rtol * |expected| per element; a failure reports how many elements mismatch, the
// first few pairs (with multi-dimensional indices when the shape is known) and the worst one. A NaN or infinity
// where the reference is finite always fails, which is what makes NaN-poisoned outputs catch unwritten elements;
// reference entries that are NaN are treated as masked (skipped).
using System.Globalization;
using System.Text;
using NUnit.Framework;

namespace Slak.Tests.Support;

/// <summary>Assertions over whole arrays.</summary>
public static class Expect
{
    private const int FirstPairs = 5;

    /// <summary>Asserts actual ~= expected element-wise (atol + rtol * |expected|).</summary>
    public static void AllClose(float[] actual, double[] expected, double atol, double rtol, string context, int[]? shape = null)
    {
        ArgumentNullException.ThrowIfNull(actual);
        ArgumentNullException.ThrowIfNull(expected);
        if (actual.Length != expected.Length)
            Assert.Fail($"{context}: length {actual.Length} but reference has {expected.Length}");
        int bad = 0, worst = -1;
        double worstExcess = double.NegativeInfinity;
        var first = new StringBuilder();
        for (int i = 0; i < actual.Length; i++)
        {
            double e = expected[i], a = actual[i];
            if (double.IsNaN(e)) continue;
            double tol = atol + rtol * Math.Abs(e);
            bool ok = double.IsInfinity(e) ? a == e : double.IsFinite(a) && Math.Abs(a - e) <= tol;
            if (ok) continue;
            double excess = double.IsFinite(a) ? Math.Abs(a - e) - tol : double.PositiveInfinity;
            if (bad < FirstPairs) first.Append(CultureInfo.InvariantCulture, $"\n  {Index(i, shape)}: got {a:R}, expected {e:R}");
            if (excess > worstExcess || worst < 0) { worstExcess = excess; worst = i; }
            bad++;
        }
        if (bad == 0) return;
        Assert.Fail(string.Create(CultureInfo.InvariantCulture,
            $"{context}: {bad} of {actual.Length} elements differ (atol {atol:G3}, rtol {rtol:G3}){first}\n  worst {Index(worst, shape)}: got {actual[worst]:R}, expected {expected[worst]:R}, |diff| {Math.Abs(actual[worst] - expected[worst]):G4}"));
    }

    /// <summary>Asserts a tensor (any device) matches a reference tensor in shape and values.</summary>
    public static void AllClose(Tensor actual, RefTensor expected, double atol, double rtol, string context)
    {
        ArgumentNullException.ThrowIfNull(actual);
        ArgumentNullException.ThrowIfNull(expected);
        Assert.That(actual.ShapeArray, Is.EqualTo(expected.Shape), $"{context}: shape");
        AllClose(actual.ToArray(), expected.Data, atol, rtol, context, expected.Shape);
    }

    /// <summary>Asserts <paramref name="actual"/> matches <paramref name="expected"/> bit for bit (NaN never
    /// matches).</summary>
    public static void Exactly(float[] actual, float[] expected, string context)
    {
        ArgumentNullException.ThrowIfNull(actual);
        ArgumentNullException.ThrowIfNull(expected);
        var e = new double[expected.Length];
        for (int i = 0; i < e.Length; i++) e[i] = expected[i];
        AllClose(actual, e, 0, 0, context);
    }

    /// <summary>Asserts that <paramref name="action"/> throws exactly <typeparamref name="T"/> whose ParamName is
    /// <paramref name="param"/> (when an ArgumentException) and whose message names the argument and contains every
    /// fragment (the values).</summary>
    public static T Throws<T>(Action action, string param, string context, params string[] fragments) where T : Exception
    {
        ArgumentNullException.ThrowIfNull(action);
        ArgumentNullException.ThrowIfNull(fragments);
        Exception? caught = null;
        try { action(); }
        catch (Exception ex) { caught = ex; }
        Assert.That(caught, Is.Not.Null, $"{context}: expected {typeof(T).Name} naming '{param}', nothing was thrown");
        Assert.That(caught, Is.TypeOf<T>(), $"{context}: expected {typeof(T).Name}, got {caught!.GetType().Name}: {caught.Message}");
        if (caught is ArgumentException ae)
            Assert.That(ae.ParamName, Is.EqualTo(param), $"{context}: ParamName of \"{ae.Message}\"");
        Assert.That(NamesWord(caught.Message, param), Is.True, $"{context}: message does not name '{param}': \"{caught.Message}\"");
        foreach (var f in fragments)
            Assert.That(caught.Message, Does.Contain(f), $"{context}: message lacks \"{f}\"");
        return (T)caught;
    }

    /// <summary>True when <paramref name="word"/> occurs in <paramref name="text"/> as a whole identifier.</summary>
    public static bool NamesWord(string text, string word)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(word);
        for (int at = text.IndexOf(word, StringComparison.Ordinal); at >= 0; at = text.IndexOf(word, at + 1, StringComparison.Ordinal))
        {
            bool before = at == 0 || !IsIdent(text[at - 1]);
            bool after = at + word.Length == text.Length || !IsIdent(text[at + word.Length]);
            if (before && after) return true;
        }
        return false;
    }

    private static bool IsIdent(char c) => char.IsLetterOrDigit(c) || c == '_';

    private static string Index(int flat, int[]? shape)
    {
        if (shape is null || shape.Length <= 1) return $"[{flat}]";
        var idx = new int[shape.Length];
        int rem = flat;
        for (int d = shape.Length - 1; d >= 0; d--) { idx[d] = shape[d] == 0 ? 0 : rem % shape[d]; rem = shape[d] == 0 ? 0 : rem / shape[d]; }
        return "[" + string.Join(", ", idx) + "]";
    }
}
