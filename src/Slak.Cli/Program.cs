// `slak`: train, eval, infer, summary, info, ... Argument parsing and presentation only; the work is in Slak.
// Every failure ends as one line "slak: error: <problem>" and exit code 1 (130 when interrupted); the stack trace is
// printed only with --debug.
using System.CommandLine;

namespace Slak.Cli;

internal static class Program
{
    private static int Main(string[] args)
    {
        var debug = new Option<bool>("--debug") { Description = "print the stack trace of an error", Recursive = true };
        // The root is named `slak` (a RootCommand takes the assembly's name, Slak.Cli, for help and errors), with the
        // help and version options a RootCommand would add.
        var root = new Command("slak", "Slak.Cuda: train and run SLaK (sparse large-kernel ConvNets) on CPU or CUDA")
        {
            new System.CommandLine.Help.HelpOption(), new VersionOption(),
        };
        root.Options.Add(debug);
        var verbs = typeof(Program).Assembly.GetTypes()
            .Where(t => typeof(ICliCommand).IsAssignableFrom(t) && t is { IsClass: true, IsAbstract: false })
            .Select(t => (ICliCommand)Activator.CreateInstance(t)!)
            .OrderBy(c => c.Order);
        foreach (var verb in verbs) root.Subcommands.Add(verb.Build());
        try
        {
            // Our own handler below turns every error into one line; System.CommandLine's would print a stack.
            return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("slak: interrupted");
            return 130;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"slak: error: {Describe(e)}");
            if (args.Contains("--debug")) Console.Error.WriteLine(e);
            return 1;
        }
    }

    /// <summary>One line naming the problem: the message, led by the exception kind when the message alone would
    /// not say what went wrong (an unexpected failure), and the inner exceptions' messages when they add
    /// to it.</summary>
    internal static string Describe(Exception e)
    {
        var parts = new List<string>();
        for (var x = e; x is not null; x = x.InnerException)
        {
            string text = x.Message.ReplaceLineEndings(" ").Trim();
            if (parts.Any(p => p.Contains(text, StringComparison.Ordinal))) continue;
            bool expected = x is ArgumentException or IOException or InvalidDataException or InvalidOperationException
                or NotSupportedException or UnauthorizedAccessException or FormatException or System.Text.Json.JsonException;
            parts.Add(expected || x != e ? text : $"{x.GetType().Name}: {text}");
        }
        return string.Join(": ", parts);
    }
}
