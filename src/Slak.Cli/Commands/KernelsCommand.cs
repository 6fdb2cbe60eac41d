// `slak kernels`: the CUDA kernel modules as the model compiles them, without a GPU. Lists each module with its
// kernels and ptxas resources (registers, static shared memory, spills) for an architecture, and with --dump DIR
// writes every module's CUBIN and PTX plus DIR/index.json (module, specialisation, defines, files, kernels,
// resources), which `kernel-model` (bench/) disassembles with nvdisasm to judge the hot loops. Today no kernel is
// specialised per preset (no per-shape NVRTC defines), so every module is compiled once, as spec "generic"; the
// preset is validated and recorded so that the file layout stays the same when specialisations arrive.
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Slak.Cuda.Compilation;

namespace Slak.Cli.Commands;

/// <summary>The kernels verb.</summary>
internal sealed class KernelsCommand : ICliCommand
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <inheritdoc />
    public int Order => 85;

    /// <inheritdoc />
    public Command Build()
    {
        var arch = new Option<string>("--arch") { Description = "target architecture, sm_80 .. sm_90", DefaultValueFactory = _ => "sm_90" };
        var preset = new Option<string>("--preset") { Description = "model preset whose kernels to compile", DefaultValueFactory = _ => "slak_tiny" };
        var dump = new Option<DirectoryInfo?>("--dump") { Description = "write <module>.<spec>.<arch>.cubin/.ptx and index.json here" };
        var cmd = new Command("kernels", "The CUDA kernel modules as the model compiles them (NVRTC, no GPU needed): resources, or --dump CUBIN/PTX for nvdisasm")
        {
            arch, preset, dump,
        };
        cmd.SetAction(parse => Run(parse.GetValue(arch)!, parse.GetValue(preset)!, parse.GetValue(dump)));
        return cmd;
    }

    private static int Run(string archText, string presetName, DirectoryInfo? dump)
    {
        _ = Slak.Models.ModelPresets.Get(presetName);  // throws ArgumentException naming the presets
        (int major, int minor) = ParseArch(archText);
        if (!NvrtcCompiler.IsAvailable(out string why))
            throw new InvalidOperationException($"slak kernels needs NVRTC: {why}");
        var compiler = new NvrtcCompiler(KernelSources.Embedded);
        int archNumber = major * 10 + minor;
        if (!compiler.SupportedArchitectures.Contains(archNumber))
            throw new ArgumentException($"--arch {archText}: NVRTC {compiler.Version.Major}.{compiler.Version.Minor} supports sm_{string.Join(", sm_", compiler.SupportedArchitectures)}");

        var cubinOptions = new CompileOptions(major, minor) { PtxasVerbose = true };
        var ptxOptions = new CompileOptions(major, minor) { ForcePtx = true };
        if (dump is not null) Directory.CreateDirectory(dump.FullName);
        var index = new List<object>();
        Console.WriteLine($"preset {presetName}, {archText}, NVRTC {compiler.Version.Major}.{compiler.Version.Minor}; no per-preset specialisations yet: each module is compiled once (spec 'generic')");
        Console.WriteLine($"{"module",-22} {"kernel",-40} {"regs",5} {"smem B",7} {"spill B",8}");
        foreach (string file in compiler.Sources.KernelFiles)
        {
            var cubin = compiler.Compile(file, cubinOptions);
            if (!cubin.IsCubin)
                throw new InvalidOperationException($"NVRTC produced PTX, not CUBIN, for {file} at {archText}");
            string module = Path.GetFileNameWithoutExtension(file);
            var resources = cubin.Resources;
            foreach (var r in resources)
                Console.WriteLine($"{module,-22} {r.Kernel,-40} {r.Registers,5} {r.SharedBytes,7} {r.SpillStoreBytes + r.SpillLoadBytes,8}");
            if (dump is null) continue;
            const string spec = "generic";
            string stem = $"{module}.{spec}.{archText}";
            File.WriteAllBytes(Path.Combine(dump.FullName, stem + ".cubin"), cubin.Image);
            var ptx = compiler.Compile(file, ptxOptions);
            File.WriteAllBytes(Path.Combine(dump.FullName, stem + ".ptx"), ptx.Image);
            index.Add(new
            {
                module,
                source = file,
                spec,
                defines = cubinOptions.Defines,
                arch = archText,
                cubin = stem + ".cubin",
                ptx = stem + ".ptx",
                kernels = compiler.Sources.KernelsInFile(file),
                resources = resources.Select(r => new
                {
                    kernel = r.Kernel,
                    registers = r.Registers,
                    static_shared_bytes = r.SharedBytes,
                    stack_frame_bytes = r.StackFrameBytes,
                    spill_bytes = r.SpillStoreBytes + r.SpillLoadBytes,
                }),
            });
        }
        if (dump is not null)
        {
            var doc = new { preset = presetName, arch = archText, nvrtc = $"{compiler.Version.Major}.{compiler.Version.Minor}", modules = index };
            File.WriteAllText(Path.Combine(dump.FullName, "index.json"),
                JsonSerializer.Serialize(doc, Indented));
            Console.WriteLine($"wrote {index.Count} modules (CUBIN + PTX) and index.json to {dump.FullName}");
        }
        return 0;
    }

    private static (int Major, int Minor) ParseArch(string text)
    {
        if (text.Length == 5 && text.StartsWith("sm_", StringComparison.Ordinal)
            && int.TryParse(text.AsSpan(3), NumberStyles.None, CultureInfo.InvariantCulture, out int n))
            return (n / 10, n % 10);
        throw new ArgumentException($"--arch must look like sm_80 or sm_90, got '{text}'");
    }
}
