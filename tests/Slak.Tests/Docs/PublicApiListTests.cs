// docs/public-api.md lists every public type of the two libraries (Slak, Slak.Cuda) by namespace, so the public
// surface is a reviewed decision: a type that becomes public (or stops being public) without the list changing fails
// here with the lines to add or remove. Regenerate the list with SLAK_WRITE_PUBLIC_API=1 (which keeps the page's
// hand-written sections, from "## Argument validation" on).
using System.Text;
using NUnit.Framework;
using Slak.Tests.Cuda;

namespace Slak.Tests.Docs;

public sealed class PublicApiListTests
{
    private static IEnumerable<string> Lines()
    {
        foreach (var asm in new[] { typeof(Slak.Tensor).Assembly, typeof(Slak.Cuda.Runtime.GpuDevices).Assembly })
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
        ["Slak.Cuda.Kernels"] = "Micro-benchmarking the kernels: one entry point per convolution family, `DecomposedDwConv` (dwconv: plan and launch at a shape and density) and `DenseConv2d` (conv2d: the stem and downsampling convolutions), their shape and branch types and the `LaunchPlan` they return; the launchers and plan functions are internal.",
        ["Slak.Cuda.Runtime"] = "Micro-benchmarking the kernels: `GpuDevices.Open` gives a `GpuDevice`, `DeviceBuffer<T>` is typed memory on it, `CudaInfo` describes the installation; the device abstraction (`IGpuDevice`), pointers, limits and the launch machinery are internal.",
    };

    [Test]
    public void EveryPublicNamespaceSaysWhoItIsFor()
    {
        var namespaces = new[] { typeof(Slak.Tensor).Assembly, typeof(Slak.Cuda.Runtime.GpuDevices).Assembly }
            .SelectMany(a => a.GetExportedTypes()).Select(t => t.Namespace ?? "(global)").Distinct();
        Assert.That(namespaces.Where(n => !Audience.ContainsKey(n)), Is.Empty, "public namespaces without an audience");
        Assert.That(Audience.Keys.Except(namespaces), Is.Empty, "audiences of namespaces that are not public");
    }

    private static string Name(Type t) => t.IsGenericTypeDefinition
        ? $"{t.Name[..t.Name.IndexOf('`', StringComparison.Ordinal)]}<{string.Join(", ", t.GetGenericArguments().Select(a => a.Name))}>"
        : t.Name;

    /// <summary>The first heading of the page's hand-written part (kept when the list is rewritten, not
    /// compared).</summary>
    private const string HandWritten = "## Argument validation";

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
            sb.AppendLine("and schedules, sparse training, the trainer, I/O), micro-benchmarking the kernels (`Slak.Cuda.Runtime`: `GpuDevice`");
            sb.AppendLine("and `DeviceBuffer<T>`; `Slak.Cuda.Kernels`: `DecomposedDwConv`, `DenseConv2d` and their `LaunchPlan`) and other frameworks");
            sb.AppendLine("(the C ABI, `include/slak/slak.h`, native). Everything else (backends, autograd engine, device abstraction,");
            sb.AppendLine("launchers, compiler, cache, allocator, emulator) is internal, visible to the command, tests and benchmarks through");
            sb.AppendLine("`InternalsVisibleTo`. Arguments are validated once, at this edge (see [Argument validation](#argument-validation)).");
            sb.AppendLine("A test (`PublicApiListTests`) fails when this list and the assemblies disagree; `SLAK_WRITE_PUBLIC_API=1` rewrites it.");
            sb.AppendLine("The guide: [csharp.md](csharp.md).");
            sb.AppendLine();
            for (int i = 0; i < actual.Count; i++)
            {
                if (i > 0 && actual[i].StartsWith("## ", StringComparison.Ordinal)) sb.AppendLine();
                sb.AppendLine(actual[i]);
                if (actual[i].StartsWith("## ", StringComparison.Ordinal)) sb.AppendLine();
                else if (Audience.TryGetValue(actual[i][3..actual[i].IndexOf('`', 3)], out var who)) sb.AppendLine($"  {who}");
            }
            var kept = File.ReadAllLines(path).SkipWhile(l => !l.StartsWith(HandWritten, StringComparison.Ordinal)).ToList();
            if (kept.Count > 0)
            {
                sb.AppendLine();
                foreach (var line in kept) sb.AppendLine(line);
            }
            File.WriteAllText(path, sb.ToString());
        }
        var documented = File.ReadAllLines(path).TakeWhile(l => !l.StartsWith(HandWritten, StringComparison.Ordinal)).Where(l => l.StartsWith("## ", StringComparison.Ordinal) || l.StartsWith("- `", StringComparison.Ordinal)).ToList();
        var missing = actual.Except(documented).ToList();
        var stale = documented.Except(actual).ToList();
        Assert.That(missing.Count + stale.Count, Is.Zero,
            $"docs/public-api.md disagrees with the assemblies.\nPublic now, not listed:\n{string.Join('\n', missing)}\nListed, not public now:\n{string.Join('\n', stale)}");
    }
}
