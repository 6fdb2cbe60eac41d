// Marks a static `int Run(string[] args)` method as a named comparison program of the bench executable, so that
// `dotnet run -c Release --project bench/Slak.Bench -- <name> [args]` runs it instead of BenchmarkDotNet.
namespace Slak.Bench;

/// <summary>Names a comparison program; the marked method must be <c>static int Run(string[] args)</c>.</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class BenchProgramAttribute(string name, string description) : Attribute
{
    /// <summary>The first command-line word that selects the program.</summary>
    public string Name { get; } = name;

    /// <summary>One line shown by <c>list</c>.</summary>
    public string Description { get; } = description;
}
