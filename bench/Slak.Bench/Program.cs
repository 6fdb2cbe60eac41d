// Entry point of the bench executable: named comparison programs (see BenchProgramAttribute) or BenchmarkDotNet.
//   dotnet run -c Release --project bench/Slak.Bench -- list
//   dotnet run -c Release --project bench/Slak.Bench -- <program> [args]
//   dotnet run -c Release --project bench/Slak.Bench -- --filter '*Gemm*'     (BenchmarkDotNet)
using System.Reflection;
using BenchmarkDotNet.Running;

namespace Slak.Bench;

internal static class Program
{
    private static int Main(string[] args)
    {
        var programs = typeof(Program).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static))
            .Select(m => (Method: m, Attr: m.GetCustomAttribute<BenchProgramAttribute>()))
            .Where(p => p.Attr is not null)
            .ToDictionary(p => p.Attr!.Name, p => p, StringComparer.Ordinal);

        if (args.Length > 0 && args[0] == "list")
        {
            foreach (var (name, p) in programs.OrderBy(p => p.Key))
                Console.WriteLine($"{name,-28} {p.Attr!.Description}");
            Console.WriteLine("(anything else is passed to BenchmarkDotNet, e.g. --list flat, --filter '*DwConv*')");
            return 0;
        }
        if (args.Length > 0 && programs.TryGetValue(args[0], out var program))
            return (int)program.Method.Invoke(null, [args[1..]])!;

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
