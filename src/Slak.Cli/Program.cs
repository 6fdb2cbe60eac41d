// `slak`: train, eval, infer, summary, info, ... Argument parsing and presentation only; the work is in Slak.
using System.CommandLine;

namespace Slak.Cli;

internal static class Program
{
    private static int Main(string[] args)
    {
        var root = new RootCommand("Slak.Cuda: train and run SLaK (sparse large-kernel ConvNets) on CPU or CUDA");
        var verbs = typeof(Program).Assembly.GetTypes()
            .Where(t => typeof(ICliCommand).IsAssignableFrom(t) && t is { IsClass: true, IsAbstract: false })
            .Select(t => (ICliCommand)Activator.CreateInstance(t)!)
            .OrderBy(c => c.Order);
        foreach (var verb in verbs) root.Subcommands.Add(verb.Build());
        try
        {
            // Our own handler below turns expected errors into one line; System.CommandLine's would print a stack.
            return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or InvalidOperationException
                                       or NotSupportedException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"slak: error: {e.Message}");
            return 1;
        }
    }
}
