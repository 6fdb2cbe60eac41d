// `slak kernels`: the CUDA kernel modules as the model compiles them, without a GPU. Lists each module with its
// kernels and ptxas resources (registers, static shared memory, spills) for an architecture, and with --dump DIR
// writes every module's CUBIN and PTX plus DIR/index.json (module, specialisation, defines, files, kernels,
// resources), which `kernel-model` (bench/) disassembles with nvdisasm to judge the hot loops. Every module is
// compiled once as spec "generic" (what the emulator runs, and the GPU for any unspecialised kernel); the fused
// depthwise module is also compiled once per distinct set of large-kernel branches of the preset's stages, with the
// launcher's per-(Kh, Kw) defines (spec e.g. "51x5-5x51-5x5"), as the model launches it on a GPU, and the small-map
// weight gradient once per stage its predicate takes at --batch (spec e.g. "14x14-47x5-5x47-5x5"), and the live-tap
// strip kernel once per branch of each stage where the float32 launchers take it at --batch and --image (spec e.g.
// "56x56-51x5", DwConvStripKernels' map and kernel defines). Then the launch plans of the fused depthwise kernels
// (forward / input gradient, weight gradient) for each stage of the preset at --batch and --image (slak_plan.h and
// DwConvStripKernels.Plan, the plans the launchers use, against the architecture's limits).
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
        var batch = new Option<int>("--batch") { Description = "images per batch for the launch plans listed per stage", DefaultValueFactory = _ => 128 };
        var image = new Option<int>("--image") { Description = "input image size in pixels for the launch plans", DefaultValueFactory = _ => 224 };
        var cmd = new Command("kernels", "The CUDA kernel modules as the model compiles them (NVRTC, no GPU needed): resources and the depthwise launch plans per stage, or --dump CUBIN/PTX for nvdisasm")
        {
            arch, preset, dump, batch, image,
        };
        cmd.SetAction(parse => Run(parse.GetValue(arch)!, parse.GetValue(preset)!, parse.GetValue(dump), parse.GetValue(batch),
                                   parse.GetValue(image)));
        return cmd;
    }

    private static int Run(string archText, string presetName, DirectoryInfo? dump, int batch, int image)
    {
        var config = Slak.Models.ModelPresets.Get(presetName).Config;  // throws ArgumentException naming the presets
        (int major, int minor) = ParseArch(archText);
        if (batch < 1) throw new ArgumentException($"--batch must be at least 1, got {batch}");
        if (image < 32 || image % 32 != 0) throw new ArgumentException($"--image must be a positive multiple of 32, got {image}");
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
        var specs = FusedSpecializations(Slak.Models.ModelPresets.Get(presetName).Config);
        Console.WriteLine($"preset {presetName}, {archText}, NVRTC {compiler.Version.Major}.{compiler.Version.Minor}; " +
                          $"every module generic, dwconv_fused also per stage branches: {string.Join(", ", specs.Select(sp => sp.Spec))}");
        Console.WriteLine($"{"module",-22} {"spec",-16} {"kernel",-40} {"regs",5} {"smem B",7} {"spill B",8}");

        void Emit(string file, string spec, IReadOnlyList<string> defines)
        {
            var cubin = compiler.Compile(file, cubinOptions with { Defines = defines });
            if (!cubin.IsCubin)
                throw new InvalidOperationException($"NVRTC produced PTX, not CUBIN, for {file} at {archText}");
            string module = Path.GetFileNameWithoutExtension(file);
            var resources = cubin.Resources;
            foreach (var r in resources)
                Console.WriteLine($"{module,-22} {spec,-16} {r.Kernel,-40} {r.Registers,5} {r.SharedBytes,7} {r.SpillStoreBytes + r.SpillLoadBytes,8}");
            if (dump is null) return;
            string stem = $"{module}.{spec}.{archText}";
            File.WriteAllBytes(Path.Combine(dump.FullName, stem + ".cubin"), cubin.Image);
            var ptx = compiler.Compile(file, ptxOptions with { Defines = defines });
            File.WriteAllBytes(Path.Combine(dump.FullName, stem + ".ptx"), ptx.Image);
            index.Add(new
            {
                module,
                source = file,
                spec,
                defines,
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

        foreach (string file in compiler.Sources.KernelFiles)
            Emit(file, "generic", []);
        foreach (var (spec, defines) in specs)
            Emit("kernels/dwconv_fused.cu", spec, defines);
        foreach (var (spec, defines) in SmallSpecializations(config, archNumber, batch, image))
            Emit(Slak.Cuda.Kernels.DwConvSmallKernels.File, spec, defines);
        foreach (var (spec, defines) in SmallWgradSpecializations(config, batch, image))
            Emit("kernels/dwconv_small_wgrad.cu", spec, defines);
        foreach (var (spec, defines) in StripSpecializations(config, archNumber, batch, image))
            Emit(Slak.Cuda.Kernels.DwConvStripKernels.File, spec, defines);
        if (dump is not null)
        {
            var doc = new { preset = presetName, arch = archText, nvrtc = $"{compiler.Version.Major}.{compiler.Version.Minor}", modules = index };
            File.WriteAllText(Path.Combine(dump.FullName, "index.json"),
                JsonSerializer.Serialize(doc, Indented));
            Console.WriteLine($"wrote {index.Count} modules (CUBIN + PTX) and index.json to {dump.FullName}");
        }
        PrintPlans(config, archText, major * 10 + minor, batch, image);
        return 0;
    }

    /// <summary>Per stage of the model: the depthwise input (N, C, H, W), its branches and the plans of the fused
    /// forward (also the input gradient and the inference sum) and weight gradient.</summary>
    private static void PrintPlans(Slak.Models.ModelConfig config, string archText, int archNumber, int batch, int image)
    {
        var limits = Slak.Cuda.Runtime.DeviceLimits.ForArchitecture(archNumber);
        int[] widths = config.StageWidths();
        Console.WriteLine();
        Console.WriteLine($"launch plans, {archText}, batch {batch}, {image} px:");
        for (int i = 0; i < 4; i++)
        {
            int size = image / 4 >> i, c = widths[i];
            var branches = Branches(config, config.KernelSize[i]);
            int[] kh = [.. branches.Select(b => b.Kh)], kw = [.. branches.Select(b => b.Kw)];
            string list = string.Join(',', branches.Select(b => string.Create(CultureInfo.InvariantCulture, $"{b.Kh}x{b.Kw}")));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"stage {i + 1}: x ({batch}, {c}, {size}, {size}), branches {list}"));
            Console.WriteLine($"  dwconv_fused_kernel (forward, input gradient, inference sum): " +
                              Slak.Cuda.Kernels.LaunchPlans.DwConvFused(batch, c, size, size, kh, kw, limits));
            Console.WriteLine($"  forward family's plan (dwconv_small_kernel on small maps, else as above): " +
                              Slak.Cuda.Kernels.LaunchPlans.DwConvSmall(batch, c, size, size, kh, kw, limits));
            Console.WriteLine($"  dwconv_fused_wgrad_kernel (weight gradient): " +
                              Slak.Cuda.Kernels.LaunchPlans.DwConvFusedWeightGrad(batch, c, size, size, kh, kw, limits));
            if (StripTakes(config, limits, i, batch, image))
                foreach (var (bh, bw) in branches)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  taken by dwconv_strip_kernel (live taps, branch {bh}x{bw}, forward / input gradient / inference sum): ") +
                        Slak.Cuda.Kernels.DwConvStripKernels.Plan(batch, c, size, size, bh, bw, limits));
            // The strip weight gradient where its plan takes every branch and the fused weight gradient's plan is the
            // fused kernel (DwConvFusedKernels.BackwardFilter on a GPU).
            if (Slak.Cuda.Kernels.LaunchPlans.DwConvFusedWeightGrad(batch, c, size, size, kh, kw, limits).KernelChoice == Slak.Cuda.Kernels.PlanKernel.DwConvFusedWgrad
                && branches.All(b => Slak.Cuda.Kernels.DwConvStripKernels.WgradPlan(batch, c, size, size, b.Kh, b.Kw, limits).KernelChoice == Slak.Cuda.Kernels.PlanKernel.DwConvStrip))
                foreach (var (bh, bw) in branches)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  taken by dwconv_strip_wgrad_kernel (live taps, branch {bh}x{bw}, weight gradient): ") +
                        Slak.Cuda.Kernels.DwConvStripKernels.WgradPlan(batch, c, size, size, bh, bw, limits));
            if (Slak.Cuda.Kernels.DwConvSmallWgradKernels.Applies(batch, size, size, [.. branches]))
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  taken by dwconv_small_wgrad_kernel (small map): grid ({c}, {Slak.Cuda.Kernels.DwConvSmallWgradKernels.Chunks(batch, size, size)}, 1) block ({Slak.Cuda.Kernels.DwConvSmallWgradKernels.Threads}, 1, 1)"));
        }
    }

    /// <summary>A stage's depthwise branches for its large kernel side <paramref name="k"/>: K x N + N x K decomposed,
    /// K x K dense, and N x N when N &lt; K.</summary>
    private static List<(int Kh, int Kw)> Branches(Slak.Models.ModelConfig config, int k)
    {
        int small = config.SmallKernel;
        var branches = new List<(int Kh, int Kw)>();
        if (config.Decom) branches.AddRange([(k, small), (small, k)]);
        else branches.Add((k, k));
        if (small < k) branches.Add((small, small));
        return branches;
    }

    /// <summary>Whether the float32 forward family runs stage <paramref name="stage"/> on dwconv_strip_kernel at this
    /// batch and image size, as DwConvFusedKernels decides on a GPU: the forward family's plan is dwconv_fused_kernel's
    /// and the strip kernel's plan takes every branch.</summary>
    private static bool StripTakes(Slak.Models.ModelConfig config, Slak.Cuda.Runtime.DeviceLimits limits, int stage,
                                   int batch, int image)
    {
        int size = image / 4 >> stage, c = config.StageWidths()[stage];
        var branches = Branches(config, config.KernelSize[stage]);
        if (branches.Count > Slak.Cuda.Kernels.DwConvFusedKernels.MaxBranches) return false;
        int[] kh = [.. branches.Select(b => b.Kh)], kw = [.. branches.Select(b => b.Kw)];
        if (Slak.Cuda.Kernels.LaunchPlans.DwConvSmall(batch, c, size, size, kh, kw, limits).KernelChoice
            != Slak.Cuda.Kernels.PlanKernel.DwConvFused) return false;
        return branches.All(b => Slak.Cuda.Kernels.DwConvStripKernels.Plan(batch, c, size, size, b.Kh, b.Kw, limits).KernelChoice
                                 == Slak.Cuda.Kernels.PlanKernel.DwConvStrip);
    }

    /// <summary>The strip kernel's modules, one per branch of each stage it takes at this batch and image size (spec
    /// "HxW-KhxKw"), with its launcher's defines (map and kernel).</summary>
    private static List<(string Spec, IReadOnlyList<string> Defines)> StripSpecializations(
        Slak.Models.ModelConfig config, int archNumber, int batch, int image)
    {
        var limits = Slak.Cuda.Runtime.DeviceLimits.ForArchitecture(archNumber);
        var result = new List<(string Spec, IReadOnlyList<string> Defines)>();
        for (int i = 0; i < 4; i++)
        {
            if (!StripTakes(config, limits, i, batch, image)) continue;
            int size = image / 4 >> i;
            foreach (var (kh, kw) in Branches(config, config.KernelSize[i]))
            {
                string spec = string.Create(CultureInfo.InvariantCulture, $"{size}x{size}-{kh}x{kw}");
                if (result.All(r => r.Spec != spec))
                    result.Add((spec, Slak.Cuda.Kernels.DwConvStripKernels.Specialization(size, size, kh, kw)));
            }
        }
        return result;
    }

    /// <summary>The distinct branch sets of the preset's large kernels (per stage: K x N + N x K [+ N x N when
    /// N &lt; K] decomposed, K x K [+ N x N] dense), each with the fused launcher's defines.</summary>
    private static List<(string Spec, IReadOnlyList<string> Defines)> FusedSpecializations(Slak.Models.ModelConfig config)
    {
        var result = new List<(string, IReadOnlyList<string>)>();
        foreach (int k in config.KernelSize.Take(config.KernelSize.Count - 1).Distinct())
        {
            var branches = Branches(config, k);
            if (branches.Count > Slak.Cuda.Kernels.DwConvFusedKernels.MaxBranches) continue; // per-branch kernels
            var fused = branches.Select(b => new Slak.Cuda.Kernels.DwConvFusedBranch(default, default, b.Kh, b.Kw)).ToArray();
            string spec = string.Join('-', branches.Select(b => string.Create(CultureInfo.InvariantCulture, $"{b.Kh}x{b.Kw}")));
            result.Add((spec, Slak.Cuda.Kernels.DwConvFusedKernels.Specialization(fused)));
        }
        return result;
    }

    /// <summary>The stages whose forward family's plan (slak_plan_dwconv_small) takes the small-map kernel at this
    /// batch and image size, each with its launcher's defines (spec "HxW-KhxKw-...").</summary>
    private static List<(string Spec, IReadOnlyList<string> Defines)> SmallSpecializations(
        Slak.Models.ModelConfig config, int archNumber, int batch, int image)
    {
        var limits = Slak.Cuda.Runtime.DeviceLimits.ForArchitecture(archNumber);
        int[] widths = config.StageWidths();
        var result = new List<(string, IReadOnlyList<string>)>();
        for (int i = 0; i < 4; i++)
        {
            int size = image / 4 >> i;
            var branches = Branches(config, config.KernelSize[i]);
            int[] kh = [.. branches.Select(b => b.Kh)], kw = [.. branches.Select(b => b.Kw)];
            var plan = Slak.Cuda.Kernels.LaunchPlans.DwConvSmall(batch, widths[i], size, size, kh, kw, limits);
            if (plan.KernelChoice != Slak.Cuda.Kernels.PlanKernel.DwConvSmall) continue;
            string spec = string.Create(CultureInfo.InvariantCulture, $"{size}x{size}-") +
                          string.Join('-', branches.Select(b => string.Create(CultureInfo.InvariantCulture, $"{b.Kh}x{b.Kw}")));
            if (result.Any(r => r.Item1 == spec)) continue;
            result.Add((spec, Slak.Cuda.Kernels.DwConvSmallKernels.Specialization(size, size, [.. branches])));
        }
        return result;
    }

    /// <summary>The small-map weight gradient's instances (spec "HxW-KhxKw-..."), for the stages whose shape at this
    /// batch its launcher's predicate takes.</summary>
    private static List<(string Spec, IReadOnlyList<string> Defines)> SmallWgradSpecializations(
        Slak.Models.ModelConfig config, int batch, int image)
    {
        var result = new List<(string Spec, IReadOnlyList<string> Defines)>();
        for (int i = 0; i < 4; i++)
        {
            int size = image / 4 >> i;
            var branches = Branches(config, config.KernelSize[i]);
            if (!Slak.Cuda.Kernels.DwConvSmallWgradKernels.Applies(batch, size, size, [.. branches])) continue;
            string spec = string.Create(CultureInfo.InvariantCulture, $"{size}x{size}-") +
                          string.Join('-', branches.Select(b => string.Create(CultureInfo.InvariantCulture, $"{b.Kh}x{b.Kw}")));
            if (result.All(r => r.Spec != spec))
                result.Add((spec, Slak.Cuda.Kernels.DwConvSmallWgradKernels.Specialization(size, size, [.. branches])));
        }
        return result;
    }

    private static (int Major, int Minor) ParseArch(string text)
    {
        if (text.Length == 5 && text.StartsWith("sm_", StringComparison.Ordinal)
            && int.TryParse(text.AsSpan(3), NumberStyles.None, CultureInfo.InvariantCulture, out int n))
            return (n / 10, n % 10);
        throw new ArgumentException($"--arch must look like sm_80 or sm_90, got '{text}'");
    }
}
