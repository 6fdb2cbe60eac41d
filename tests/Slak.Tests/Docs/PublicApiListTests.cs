// docs/public-api.md lists every public type of the two libraries (Slak, Slak.Cuda) by namespace, so the public
// surface is a reviewed decision: a type that becomes public (or stops being public) without the list changing fails
// here with the lines to add or remove. Regenerate the list with SLAK_WRITE_PUBLIC_API=1.
using System.Text;
using NUnit.Framework;
using Slak.Tests.Cuda;

namespace Slak.Tests.Docs;

public sealed class PublicApiListTests
{
    private static IEnumerable<string> Lines()
    {
        foreach (var asm in new[] { typeof(Slak.Tensor).Assembly, typeof(Slak.Cuda.Runtime.IGpuDevice).Assembly })
        {
            yield return $"## {asm.GetName().Name}";
            foreach (var g in asm.GetExportedTypes().Where(t => !t.IsNested)
                         .GroupBy(t => t.Namespace ?? "(global)").OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                yield return $"- `{g.Key}`: " + string.Join(", ", g.Select(Name).OrderBy(n => n, StringComparer.Ordinal).Select(n => $"`{n}`"));
            }
        }
    }

    /// <summary>Who each public namespace is for (written under its line in docs/public-api.md; a new public
    /// namespace needs an entry here).</summary>
    private static readonly Dictionary<string, string> Audience = new(StringComparer.Ordinal)
    {
        ["Slak"] = "Training from C#: tensors, devices, the operators `F`, scopes, random numbers.",
        ["Slak.Analysis"] = "Training from C#: the effective receptive field of a trained model (`slak erf`).",
        ["Slak.Autograd"] = "Training from C#: `GradMode` (no-grad scopes); the engine itself is internal.",
        ["Slak.Backends"] = "Training from C#: the regrowth rule of sparse training (`SparseOptions`); the backends are internal.",
        ["Slak.Data"] = "Training from C#: data sets, transforms, augmentation, the batch loader.",
        ["Slak.Export"] = "Running elsewhere: ONNX export.",
        ["Slak.IO"] = "Training from C#: checkpoints (safetensors), arrays (npy/npz, IDX), images and image folders.",
        ["Slak.Inference"] = "Running a trained model from C#.",
        ["Slak.Models"] = "Training from C#: SLaK models, presets and configs, state dictionaries, summaries.",
        ["Slak.NN"] = "Training from C#: modules.",
        ["Slak.Optim"] = "Training from C#: AdamW, schedules, gradient clipping.",
        ["Slak.Sparse"] = "Training from C#: masking and the sparse-training options.",
        ["Slak.Train"] = "Training from C#: the trainer, its options, results and evaluation.",
        ["Slak.Cuda.Compilation"] = "Kernel users: the exception a failed NVRTC compilation throws; the compiler and cache are internal.",
        ["Slak.Cuda.Emulation"] = "Kernel users: the exception a kernel fault on the emulator throws; the emulator itself is internal (device \"cuda-emu\").",
        ["Slak.Cuda.Interop"] = "Kernel users: the exceptions and status codes of the CUDA driver, NVRTC and cuBLAS.",
        ["Slak.Cuda.Kernels"] = "Micro-benchmarking the kernels: `DecomposedDwConv` (plan and launch at a shape and density) and its launch plans.",
        ["Slak.Cuda.Runtime"] = "Micro-benchmarking the kernels: devices (`GpuDevices`, `IGpuDevice`), `DeviceBuffer<T>`, device limits.",
    };

    [Test]
    public void EveryPublicNamespaceSaysWhoItIsFor()
    {
        var namespaces = new[] { typeof(Slak.Tensor).Assembly, typeof(Slak.Cuda.Runtime.IGpuDevice).Assembly }
            .SelectMany(a => a.GetExportedTypes()).Select(t => t.Namespace ?? "(global)").Distinct();
        Assert.That(namespaces.Where(n => !Audience.ContainsKey(n)), Is.Empty, "public namespaces without an audience");
        Assert.That(Audience.Keys.Except(namespaces), Is.Empty, "audiences of namespaces that are not public");
    }

    private static string Name(Type t) => t.IsGenericTypeDefinition
        ? $"{t.Name[..t.Name.IndexOf('`', StringComparison.Ordinal)]}<{string.Join(", ", t.GetGenericArguments().Select(a => a.Name))}>"
        : t.Name;

    [Test]
    public void TheDocumentedPublicTypesAreThePublicTypes()
    {
        string root = NvrtcTestSupport.RepositoryRoot() ?? throw new IgnoreException("repository root not found");
        string path = Path.Combine(root, "docs", "public-api.md");
        var actual = Lines().ToList();
        if (Environment.GetEnvironmentVariable("SLAK_WRITE_PUBLIC_API") == "1")
        {
            var sb = new StringBuilder();
            sb.AppendLine("# The public API of Slak and Slak.Cuda");
            sb.AppendLine();
            sb.AppendLine("Every public (exported, non-nested) type, by assembly and namespace, with the user it is for. The design card");
            sb.AppendLine("names three users: training SLaK from C# (`Slak`: tensors, devices, `F`, modules, models and presets, optimizers");
            sb.AppendLine("and schedules, sparse training, the trainer, I/O), micro-benchmarking the kernels (`Slak.Cuda.Runtime`: devices");
            sb.AppendLine("and `DeviceBuffer<T>`; `Slak.Cuda.Kernels`: `DecomposedDwConv` and launch plans) and other frameworks (the C ABI,");
            sb.AppendLine("`include/slak/slak.h`, native). Everything else (backends, autograd engine, launchers, compiler, cache, allocator,");
            sb.AppendLine("emulator) is internal, visible to the command, tests and benchmarks through `InternalsVisibleTo`. Arguments are");
            sb.AppendLine("validated at this edge (`F`, `DecomposedDwConv`, `DeviceBuffer<T>`). A test (`PublicApiListTests`) fails when");
            sb.AppendLine("this list and the assemblies disagree; `SLAK_WRITE_PUBLIC_API=1` rewrites it.");
            sb.AppendLine("The guide: [csharp.md](csharp.md).");
            sb.AppendLine();
            for (int i = 0; i < actual.Count; i++)
            {
                if (i > 0 && actual[i].StartsWith("## ", StringComparison.Ordinal)) sb.AppendLine();
                sb.AppendLine(actual[i]);
                if (actual[i].StartsWith("## ", StringComparison.Ordinal)) sb.AppendLine();
                else if (Audience.TryGetValue(actual[i][3..actual[i].IndexOf('`', 3)], out var who)) sb.AppendLine($"  {who}");
            }
            File.WriteAllText(path, sb.ToString());
        }
        var documented = File.ReadAllLines(path).Where(l => l.StartsWith("## ", StringComparison.Ordinal) || l.StartsWith("- `", StringComparison.Ordinal)).ToList();
        var missing = actual.Except(documented).ToList();
        var stale = documented.Except(actual).ToList();
        Assert.That(missing.Count + stale.Count, Is.Zero,
            $"docs/public-api.md disagrees with the assemblies.\nPublic now, not listed:\n{string.Join('\n', missing)}\nListed, not public now:\n{string.Join('\n', stale)}");
    }
}
