// `kernel-model`: the CUDA kernels judged from their machine code, without a GPU. Compiles every kernel module with
// NVRTC for an architecture exactly as the runtime does (CompileOptions with the runtime's defines; none per preset
// yet), disassembles each CUBIN with nvdisasm (Debian's nvidia-cuda-toolkit; bench/kernel-model.sh installs it when
// missing, CI never does), finds each kernel's hot loop (SassListing) and writes its instruction mix: FFMA share,
// shared and global loads per FFMA, registers and static shared memory from ptxas. The share of FFMAs in the hot loop
// bounds the fraction of the FP32 FMA peak a kernel can reach when it is issue-bound (one warp instruction per cycle
// per scheduler; every non-FFMA instruction takes an FFMA's slot), before any stall.
//   dotnet run -c Release --project bench/Slak.Bench -- kernel-model \
//     [--arch sm_90] [--out bench/results/kernel-model.md]
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Slak.Cuda.Compilation;
using Slak.Cuda.Kernels;

namespace Slak.Bench.KernelModel;

internal static class KernelModelProgram
{
    [BenchProgram("kernel-model", "SASS of every kernel (NVRTC + nvdisasm, no GPU): hot-loop FFMA share, loads per FFMA, registers")]
    public static int Run(string[] args)
    {
        string arch = "sm_90";
        string? outPath = null;
        string variant = "sliding";
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--arch": arch = args[i + 1]; break;
                case "--out": outPath = args[i + 1]; break;
                case "--variant": variant = args[i + 1]; break;
                default: throw new ArgumentException($"kernel-model: unknown option {args[i]} (--arch, --out, --variant)");
            }
        }
        if (variant is not ("sliding" or "nostrip" or "nostripwgrad" or "taplist" or "taps" or "noedge" or "fullstrips"))
            throw new ArgumentException($"kernel-model: --variant must be sliding (the current kernels), nostrip (dwconv_fused_kernel at stages 1-2 instead of the live-tap strip kernel), nostripwgrad (dwconv_fused_wgrad_kernel at stages 1-2 instead of the strip weight gradient), taplist (the live-tap-list forward before its rewrite), taps (the live-tap weight gradient before its rewrite), noedge (the sliding forward before its image-edge steps) or fullstrips (the weight gradient before its trimmed strips), got '{variant}'");
        string nvdisasm = FindNvdisasm() ?? throw new InvalidOperationException(
            "kernel-model needs nvdisasm (Debian: nvidia-cuda-toolkit from the non-free section); run bench/kernel-model.sh, which installs it");
        int archNumber = int.Parse(arch.AsSpan(3), CultureInfo.InvariantCulture);
        var compiler = new NvrtcCompiler(KernelSources.Embedded);
        var options = new CompileOptions(archNumber / 10, archNumber % 10) { PtxasVerbose = true };
        string tmp = Directory.CreateTempSubdirectory("slak-kernel-model").FullName;
        var rows = new List<KernelRow>();
        try
        {
            void Add(string file, string label, IReadOnlyList<string> defines)
            {
                var module = compiler.Compile(file, options with { Defines = defines });
                string cubin = Path.Combine(tmp, label + ".cubin");
                File.WriteAllBytes(cubin, module.Image);
                string listing = RunTool(nvdisasm, "-c", cubin);
                var resources = module.Resources.ToDictionary(r => r.Kernel, StringComparer.Ordinal);
                foreach (var k in SassListing.Parse(listing))
                    rows.Add(new KernelRow(label, k, resources.GetValueOrDefault(k.Name)));
            }
            foreach (string file in compiler.Sources.KernelFiles)
                Add(file, Path.GetFileNameWithoutExtension(file), []);
            // The fused depthwise module as the launcher compiles it for each SLaK-T stage (per-(Kh, Kw) defines), and
            // the live-tap-list body it replaced (the "before" of the comparison).
            Add(FusedFile, TapListModule, ["SLAK_DW_FUSED_TAPLIST=1"]);
            Add(FusedFile, TapsModule, ["SLAK_DW_WGRAD_TAPS=1"]);
            foreach (var st in DwConvModel.SlakTiny)
                Add(FusedFile, SpecModule(st), SpecDefines(st));
            // The sliding forward without its image-edge steps (--variant noedge) where the fused kernel runs it.
            foreach (var st in DwConvModel.SlakTiny.Where(st => !SmallChosen(st)))
                Add(FusedFile, SpecModule(st) + NoEdgeSuffix, [.. SpecDefines(st), "SLAK_DW_EDGE_STEPS=0"]);
            Add(FusedFile, "dwconv_fused" + NoEdgeSuffix, ["SLAK_DW_EDGE_STEPS=0"]);
            // The weight gradient before its trimmed strips (--variant fullstrips).
            Add(FusedFile, "dwconv_fused" + FullStripsSuffix, ["SLAK_DW_WGRAD_TRIM=0"]);
            // The live-tap strip kernel's module of every branch of each stage its plan takes (SLaK-T: stages 1-2); the
            // module also holds the strip weight gradient (dwconv_strip_wgrad_kernel).
            foreach (var st in DwConvModel.SlakTiny.Where(st => DwConvStripModel.Chosen(st, Batch) || DwConvStripModel.WgradChosen(st, Batch)))
                foreach (var b in st.Branches)
                    Add(DwConvStripKernels.File, DwConvStripModel.Module(st, b), DwConvStripModel.Defines(st, b));
            // The small-map module for each stage whose plan chooses it (SLaK-T: stages 3-4).
            foreach (var st in DwConvModel.SlakTiny.Where(st => SmallChosen(st)))
                Add(Slak.Cuda.Kernels.DwConvSmallKernels.File, SmallModule(st), SmallDefines(st));
            // The small-map weight gradient's instance for each stage its predicate takes.
            foreach (var st in DwConvModel.SlakTiny.Where(st => DwConvSmallWgradModel.Applies(st, Batch)))
                Add(SmallWgradFile, SmallWgradModule(st), DwConvSmallWgradModel.Defines(st));
        }
        finally
        {
            Directory.Delete(tmp, recursive: true);
        }
        string report = Report(rows, arch, compiler, variant);
        Console.Write(report);
        if (outPath is not null) File.WriteAllText(outPath, report);
        return 0;
    }

    internal sealed record KernelRow(string Module, SassKernel Kernel, KernelResources? Resources);

    private const string FusedFile = "kernels/dwconv_fused.cu", TapListModule = "dwconv_fused[taplist]",
                         TapsModule = "dwconv_fused[taps]", NoEdgeSuffix = "[noedge]",
                         FullStripsSuffix = "[fullstrips]";

    private const string SmallWgradFile = "kernels/dwconv_small_wgrad.cu";

    /// <summary>The batch of the model's tables.</summary>
    private const int Batch = 128;

    private static string SmallWgradModule(DwConvModel.Stage st) =>
        string.Create(CultureInfo.InvariantCulture, $"dwconv_small_wgrad[{st.H}x{st.H}:") +
        string.Join(',', st.Branches.Select(b => string.Create(CultureInfo.InvariantCulture, $"{b.Kh}x{b.Kw}"))) + "]";

    private static string SpecModule(DwConvModel.Stage st) =>
        "dwconv_fused[" + string.Join(',', st.Branches.Select(b => string.Create(CultureInfo.InvariantCulture, $"{b.Kh}x{b.Kw}"))) + "]";

    private static string[] SpecDefines(DwConvModel.Stage st) =>
        [.. st.Branches.SelectMany((b, i) => new[]
        {
            string.Create(CultureInfo.InvariantCulture, $"SLAK_DW_KH{i}={b.Kh}"),
            string.Create(CultureInfo.InvariantCulture, $"SLAK_DW_KW{i}={b.Kw}"),
        })];

    private static string SmallModule(DwConvModel.Stage st) =>
        string.Create(CultureInfo.InvariantCulture, $"dwconv_small[{st.H}x{st.H}:") +
        string.Join(',', st.Branches.Select(b => string.Create(CultureInfo.InvariantCulture, $"{b.Kh}x{b.Kw}"))) + "]";

    private static IReadOnlyList<string> SmallDefines(DwConvModel.Stage st) =>
        Slak.Cuda.Kernels.DwConvSmallKernels.Specialization(st.H, st.H, st.Branches);

    /// <summary>Whether the forward family's plan (slak_plan_dwconv_small) sends this stage at batch 128 to the
    /// small-map kernel.</summary>
    private static bool SmallChosen(DwConvModel.Stage st) => DwConvModel.SmallForward("fwd", st, 128, 1, 1) is not null;

    private static string Report(List<KernelRow> rows, string arch, NvrtcCompiler compiler, string variant)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("# Kernel machine code (SASS), judged without a GPU");
        sb.AppendLine();
        sb.AppendLine(inv, $"Generated by `kernel-model` (bench/Slak.Bench/KernelModel) on {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, commit {Commit()}: every module compiled by NVRTC {compiler.Version.Major}.{compiler.Version.Minor} for {arch} as the runtime compiles it, disassembled by nvdisasm.");
        sb.AppendLine("The hot loop is the innermost loop (backward branch) with the most FFMAs (for `dwconv_small_kernel` modules without such a loop, the straight-line block with the most FFMAs, marked `block`). Its FFMA share bounds the fraction of the FP32 FMA peak an issue-bound kernel can reach (each non-FFMA instruction takes an issue slot), before any stall, occupancy or memory limit.");
        sb.AppendLine("What this table ignores: latencies and stalls, memory bandwidth, lanes idle at tile edges, how often each loop runs (a kernel's time may sit outside its hot loop). The model below adds lane efficiency and the HBM floor for the fused depthwise kernels (see DwConvModel.cs for what it ignores).");
        sb.AppendLine("Occupancy (sm_90): resident warps per SM / 64 from the registers, the block (the kernel's `__launch_bounds__`, else the 256 threads of most plans) and the static shared memory only; the model tables below give it with each depthwise plan's dynamic shared memory.");
        sb.AppendLine();
        sb.AppendLine(inv, $"| module | kernel | regs | static smem B | occupancy | hot loop (bytes) | loop instr | FFMA | FFMA share | LDS/FFMA | LDG/FFMA | kernel FFMA share |");
        sb.AppendLine("|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows.OrderBy(r => r.Module, StringComparer.Ordinal).ThenBy(r => r.Kernel.Name, StringComparer.Ordinal))
        {
            var hot = r.Kernel.HotLoop;
            // The small-map kernel's fully unrolled modules have no loop around their FFMAs: their straight-line
            // block with the most FFMAs stands in, marked "block".
            string kind = "";
            if (hot is null && r.Kernel.Name == Slak.Cuda.Kernels.DwConvSmallKernels.Kernel && r.Kernel.HotBlock is { } block)
                (hot, kind) = (block, " block");
            var all = r.Kernel.Mix();
            string loop = "-", instr = "-", ffma = "-", share = "-", lds = "-", ldg = "-";
            if (hot is not null)
            {
                var m = r.Kernel.Mix(hot);
                loop = $"0x{hot.Start:x4}-0x{hot.End:x4}{kind}";
                instr = m.Instructions.ToString(inv);
                ffma = m.Ffma.ToString(inv);
                share = m.FfmaShare.ToString("F2", inv);
                lds = m.SharedLoadsPerFfma.ToString("F2", inv);
                ldg = m.GlobalLoadsPerFfma.ToString("F2", inv);
            }
            string occupancy = r.Resources is { } res
                ? DwConvModel.Occupancy(res.Registers, LaunchBound(compiler, r.Kernel.Name) ?? 256, res.SharedBytes).ToString("F2", inv) : "?";
            sb.AppendLine(inv, $"| {r.Module} | {r.Kernel.Name} | {r.Resources?.Registers.ToString(inv) ?? "?"} | {r.Resources?.SharedBytes.ToString(inv) ?? "?"} | {occupancy} | {loop} | {instr} | {ffma} | {share} | {lds} | {ldg} | {all.FfmaShare.ToString("F2", inv)} |");
        }
        sb.AppendLine();
        sb.AppendLine(inv, $"{arch}, NVRTC {compiler.Version.Major}.{compiler.Version.Minor}; {rows.Count} kernels.");
        sb.AppendLine();
        PatchifyModel.Append(sb);
        NormModel.Append(sb, k => rows.FirstOrDefault(r => r.Kernel.Name == k)?.Resources?.Registers ?? 0);
        AppendModel(sb, rows, variant);
        return sb.ToString();
    }

    /// <summary>The first argument of the kernel's <c>__launch_bounds__</c> in its source, if it has one (a number or a
    /// constant of slak_params.h).</summary>
    private static int? LaunchBound(NvrtcCompiler compiler, string kernel)
    {
        if (!compiler.Sources.KernelToFile.TryGetValue(kernel, out var file)) return null;
        var m = System.Text.RegularExpressions.Regex.Match(compiler.Sources.Files[file],
            @"__launch_bounds__\s*\(\s*([A-Za-z0-9_]+)[^)]*\)\s*" + kernel + @"\s*\(");
        if (!m.Success) return null;
        string v = m.Groups[1].Value;
        if (int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n)) return n;
        // A constant the plan library does not export (e.g. residual.cu's kResidualThreads): unknown, not a crash.
        try { return (int)Slak.Cuda.Kernels.LaunchPlans.Constant(v); }
        catch (ArgumentException) { return null; }
    }

    private static KernelRow Row(List<KernelRow> rows, string module, string kernel) =>
        rows.FirstOrDefault(r => r.Module == module && r.Kernel.Name == kernel)
        ?? throw new InvalidOperationException($"kernel-model: {kernel} of {module} not found in the disassembly");

    private static double HotShare(List<KernelRow> rows, string module, string kernel)
    {
        var k = Row(rows, module, kernel).Kernel;
        var hot = k.HotLoop ?? throw new InvalidOperationException($"kernel-model: {kernel} of {module} has no FFMA loop");
        return k.Mix(hot).FfmaShare;
    }

    /// <summary>The FFMA share of the small-map kernel's hot region: its band loop (the interior bands of its
    /// heaviest branch) where it has one, else its heaviest straight-line block (a fully unrolled branch
    /// body).</summary>
    private static double HotRegionShare(List<KernelRow> rows, string module, string kernel)
    {
        var k = Row(rows, module, kernel).Kernel;
        var hot = k.HotRegion ?? throw new InvalidOperationException($"kernel-model: {kernel} of {module} has no FFMA");
        return k.Mix(hot.Range).FfmaShare;
    }

    private static double PlanOccupancy(List<KernelRow> rows, string module, string kernel, string plan)
    {
        int regs = Row(rows, module, kernel).Resources?.Registers ?? 0;
        var m = System.Text.RegularExpressions.Regex.Match(plan, @"block \((\d+), (\d+), (\d+)\) smem (\d+)\+(\d+) B");
        if (!m.Success) return double.NaN;
        int V(int g) => int.Parse(m.Groups[g].Value, CultureInfo.InvariantCulture);
        return DwConvModel.Occupancy(regs, V(1) * V(2) * V(3), V(4) + V(5));
    }

    private static void AppendModel(StringBuilder sb, List<KernelRow> rows, string variant)
    {
        var inv = CultureInfo.InvariantCulture;
        const int batch = Batch;
        const double density = 0.6;
        double tapShare = HotShare(rows, TapListModule, "dwconv_fused_kernel");
        double wgradShare = HotShare(rows, "dwconv_fused", "dwconv_fused_wgrad_kernel");
        double tapsShare = HotShare(rows, TapsModule, "dwconv_fused_wgrad_kernel");
        // A variant names the kernel before its rewrite that replaces the current one: taplist (forward and input
        // gradient), taps (weight gradient); "before" is both.
        bool edgeSteps = true; // false: the sliding forward before its image-edge steps (--variant noedge)
        bool trimStrips = true; // false: the weight gradient before its trimmed strips (--variant fullstrips)
        bool strips = true; // false: dwconv_fused_kernel where the live-tap strip kernel runs (--variant nostrip)
        bool stripWgrad = true; // false: dwconv_fused_wgrad_kernel where the strip weight gradient runs (--variant nostripwgrad)
        DwConvModel.Estimate Fwd(bool old, string pass, DwConvModel.Stage st, double d, bool? useStrip = null)
        {
            // The live-tap strip kernel where its plan takes the stage (stages 1-2).
            if (!old && (useStrip ?? strips) && edgeSteps && DwConvStripModel.Chosen(st, batch))
                return Strip(pass, st, d);
            // The small-map kernel where the family's plan chooses it (not for the variants before the rewrites).
            if (!old && SmallChosen(st))
            {
                var small = DwConvModel.SmallForward(pass, st, batch, d,
                    HotRegionShare(rows, SmallModule(st), Slak.Cuda.Kernels.DwConvSmallKernels.Kernel))!;
                return small with
                {
                    BankWays = DwConvModel.Conflict(l => l * (long)((st.H * st.H) | 1)),
                    Occupancy = PlanOccupancy(rows, SmallModule(st), Slak.Cuda.Kernels.DwConvSmallKernels.Kernel, small.Plan),
                };
            }
            var e = old ? DwConvModel.FusedForwardTapList(pass, st, batch, d, tapShare)
                        : DwConvModel.FusedForward(pass, st, batch, d,
                              HotShare(rows, SpecModule(st) + (edgeSteps ? "" : NoEdgeSuffix), "dwconv_fused_kernel"), edgeSteps);
            return e with
            {
                BankWays = DwConvModel.ForwardConflicts(st),
                Occupancy = PlanOccupancy(rows, old ? TapListModule : SpecModule(st), "dwconv_fused_kernel", e.Plan),
            };
        }
        DwConvModel.Estimate Wgrad(bool old, DwConvModel.Stage st, double d, bool? useStrip = null)
        {
            // The strip weight gradient where its plan takes the stage (stages 1-2); the fused kernel's own variants
            // (noedge, fullstrips) keep the fused kernel there.
            if (!old && (useStrip ?? stripWgrad) && edgeSteps && trimStrips && DwConvStripModel.WgradChosen(st, batch))
                return StripWgrad(st, d);
            if (!old && DwConvSmallWgradModel.Applies(st, batch))
            {
                string module = SmallWgradModule(st);
                var small = DwConvSmallWgradModel.WeightGrad(st, batch, d, HotShare(rows, module, "dwconv_small_wgrad_kernel"));
                // BankWays 1: its hot loop reads global memory only (no shared-memory loads to conflict).
                return small with { BankWays = 1, Occupancy = PlanOccupancy(rows, module, "dwconv_small_wgrad_kernel", small.Plan) };
            }
            var e = old ? DwConvModel.FusedWeightGradTaps(st, batch, d, tapsShare)
                        : DwConvModel.FusedWeightGrad(st, batch, d,
                              !edgeSteps ? HotShare(rows, "dwconv_fused" + NoEdgeSuffix, "dwconv_fused_wgrad_kernel")
                              : trimStrips ? wgradShare : HotShare(rows, "dwconv_fused" + FullStripsSuffix, "dwconv_fused_wgrad_kernel"),
                              edgeSteps, trimStrips);
            return e with
            {
                BankWays = old ? DwConvModel.WgradTapsConflicts(st) : DwConvModel.WgradConflicts(st, batch),
                Occupancy = PlanOccupancy(rows, old ? TapsModule : "dwconv_fused", "dwconv_fused_wgrad_kernel", e.Plan),
            };
        }
        DwConvModel.Estimate StripWgrad(DwConvModel.Stage st, double d) =>
            DwConvStripModel.WeightGrad(st, batch, d, b =>
            {
                var row = Row(rows, DwConvStripModel.Module(st, b), DwConvStripKernels.WgradKernel);
                return DwConvStripModel.ReadWgrad(row.Kernel, row.Resources?.Registers ?? 0);
            });
        DwConvModel.Estimate Strip(string pass, DwConvModel.Stage st, double d) =>
            DwConvStripModel.Forward(pass, st, batch, d, accumulate: pass != "fwd", b =>
            {
                var row = Row(rows, DwConvStripModel.Module(st, b), DwConvStripKernels.Kernel);
                return DwConvStripModel.Read(row.Kernel, row.Resources?.Registers ?? 0);
            });
        List<DwConvModel.Estimate> Estimates(bool oldFwd, bool oldWgrad)
        {
            var all = new List<DwConvModel.Estimate>();
            foreach (var st in DwConvModel.SlakTiny)
            {
                all.Add(Fwd(oldFwd, "fwd", st, density));
                all.Add(Fwd(oldFwd, "dgrad", st, density));
                all.Add(Wgrad(oldWgrad, st, density));
            }
            return all;
        }

        sb.AppendLine(inv, $"## Modeled: SLaK-T, batch {batch}, 224 px, density {density}, one H200 ({DwConvModel.Sms} SMs, {DwConvModel.FmaPerSecond * 2 / 1e12:F1} TFLOP/s FP32, {DwConvModel.HbmBytesPerSecond / 1e12:F1} TB/s)");
        sb.AppendLine();
        sb.AppendLine("Useful FMAs are in-bounds products with live taps (the FMA floor); issued FFMAs follow each kernel's loop structure and launch plan; the modeled time is max(issue-bound time = floor / (FFMA share x lane efficiency), HBM floor). Nothing here is measured.");
        sb.AppendLine("The forward and input-gradient rows use the FFMA share of the hot loop of `dwconv_fused_kernel` compiled for that stage's branches (module `dwconv_fused[KhxKw,...]`, the launcher's per-(Kh, Kw) defines) for the sliding-window kernel, and of the generic `dwconv_fused[taplist]` module for the live-tap-list kernel it replaced. The weight-gradient rows use `dwconv_fused_wgrad_kernel` of the generic module (it has no per-size specialisation: its strides are per lane, its steps immediates) and of `dwconv_fused[taps]` (SLAK_DW_WGRAD_TAPS=1, the live-tap body it replaced, under the plan it was launched with). Where the small-map predicate (`DwConvSmallWgradKernels.Applies`, the launcher's) takes a stage, its weight-gradient row in the After table is `dwconv_small_wgrad_kernel` of that stage's instance (module `dwconv_small_wgrad[HxW:branches]`, DwConvSmallWgradModel).");
        sb.AppendLine("Bank ways: the worst n-way shared-memory bank conflict of the hot loop's loads, computed from the plan's strides (1: conflict-free; 128-bit loads counted per quarter warp). Occupancy: resident warps per SM / 64 on sm_90 from the kernel's registers and the plan's block and shared bytes.");
        sb.AppendLine("Also ignored by the model: instructions outside the hot loop (tile and weight staging, the weight gradient's per-task setup and warp reduction, stores), stalls and occupancy (warps idle at barriers: the weight gradient's tasks do not divide evenly among 8 warps), shared-memory bandwidth (the sliding forward issues 27 shared loads per 128 FFMAs in its two-step loop), the single-step remainder of an odd step count (17 loads and ~26 other instructions per 64 FFMAs, below the hot loop's share), the input gradient's extra tile loads (one per branch), L2 reuse (the weight gradient reads x once per orientation phase; both reads are counted against HBM).");
        sb.AppendLine(inv, $"Image-edge steps (default; `--variant noedge` is the loop before them): the steps clipped by the image's or the tile's edges issue only their in-image products (counted in the lane efficiency); their loads and an estimated {DwConvModel.ClippedStepOverhead} loop and {DwConvModel.ClippedStepDispatch} dispatch instructions per clipped step are added to the issue time as slots beside the hot loop's (estimates, not counted in the machine code).");
        var lines = new Dictionary<string, string>(StringComparer.Ordinal);
        var inBoundsLines = new Dictionary<string, string>(StringComparer.Ordinal);
        var S2 = new Dictionary<string, string>(StringComparer.Ordinal);   // the weight gradient at stage 2 per variant
        foreach (var (name, oldFwd, oldWgrad) in new[] { ("before", true, true), ("taplist", true, false), ("taps", false, true), ("noedge", false, false), ("fullstrips", false, false), ("nostrip", false, false), ("nostripwgrad", false, false), ("sliding", false, false) })
        {
            edgeSteps = name != "noedge";
            trimStrips = name != "fullstrips";
            strips = name != "nostrip";
            stripWgrad = name != "nostripwgrad";
            var all = Estimates(oldFwd, oldWgrad);
            string P(string pass, string stage) => all.First(e => e.Pass == pass && e.Stage == stage).PercentOfFmaFloor.ToString("F0", inv);
            S2[name] = P("wgrad", "s2");
            lines[name] = $"fwd s1 {P("fwd", "s1")}%, dgrad s1 {P("dgrad", "s1")}%, wgrad s1 {P("wgrad", "s1")}%, fwd s4 {P("fwd", "s4")}%, wgrad s4 {P("wgrad", "s4")}%";
            // The other reading of "valid taps": every in-bounds product counts as work, masked ones included (the
            // floor of the same convolution with dense weights: the live-tap floor / density).
            string D(string pass, string stage) => (all.First(e => e.Pass == pass && e.Stage == stage).PercentOfFmaFloor / density).ToString("F0", inv);
            inBoundsLines[name] = $"fwd s1 {D("fwd", "s1")}%, dgrad s1 {D("dgrad", "s1")}%, wgrad s1 {D("wgrad", "s1")}%, fwd s3 {D("fwd", "s3")}%, wgrad s3 {D("wgrad", "s3")}%, fwd s4 {D("fwd", "s4")}%, wgrad s4 {D("wgrad", "s4")}%";
            if (name is "taplist" or "taps" or "noedge" or "fullstrips" or "nostrip" or "nostripwgrad") continue;
            sb.AppendLine();
            sb.AppendLine(name == "before"
                ? "### Before: live-tap-list forward / input gradient (`--variant taplist`, SLAK_DW_FUSED_TAPLIST=1) and live-tap weight gradient (`--variant taps`, SLAK_DW_WGRAD_TAPS=1)"
                : "### After: live-tap strip forward / input gradient / weight gradient at stages 1-2 (`dwconv_strip_kernel`, `dwconv_strip_wgrad_kernel`), small-map kernels at stages 3-4 (`--variant sliding`, the default)");
            sb.AppendLine();
            sb.AppendLine("| pass | stage | useful GFMA | lane efficiency | hot-loop FFMA share | bank ways | occupancy | FMA floor ms | HBM floor ms | modeled ms | % of FMA floor | plan |");
            sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
            foreach (var e in all)
                sb.AppendLine(inv, $"| {e.Pass} | {e.Stage} | {e.UsefulFma / 1e9:F2} | {e.LaneEfficiency:F2} | {e.FfmaShare:F2} | {e.BankWays} | {e.Occupancy:F2} | {e.FmaFloorMs:F3} | {e.HbmFloorMs:F3} | {e.ModeledMs:F3} | {e.PercentOfFmaFloor:F0} | {e.Plan} |");
        }

        // The small-map kernel against the fused kernel it replaces at the stages its plan takes.
        sb.AppendLine();
        sb.AppendLine("### Small maps: `dwconv_small_kernel` against `dwconv_fused_kernel` (forward and input gradient)");
        sb.AppendLine();
        sb.AppendLine("The small kernel's FFMA share is that of its hot region: the band loop (interior bands of its heaviest branch) where the module has one (14 x 14), else its heaviest straight-line block, a fully unrolled branch body (7 x 7: no backward branch holds an FFMA). Staging the planes into shared memory, the weights and the coalesced write-back are outside that region and ignored, as for the other kernels.");
        sb.AppendLine();
        sb.AppendLine("| pass | stage | fused: lane efficiency | fused: % of FMA floor | small: lane efficiency | small: FFMA share | small: occupancy | small: % of FMA floor |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|");
        foreach (var st in DwConvModel.SlakTiny.Where(st => SmallChosen(st)))
            foreach (string pass in new[] { "fwd", "dgrad" })
            {
                var f = DwConvModel.FusedForward(pass, st, batch, density, HotShare(rows, SpecModule(st), "dwconv_fused_kernel"));
                var sm = Fwd(false, pass, st, density);
                sb.AppendLine(inv, $"| {pass} | {st.Name} | {f.LaneEfficiency:F2} | {f.PercentOfFmaFloor:F0} | {sm.LaneEfficiency:F2} | {sm.FfmaShare:F2} | {sm.Occupancy:F2} | {sm.PercentOfFmaFloor:F0} |");
            }

        // The issue's small-map requirement (at least half of the launched lanes produce outputs at 7 x 7 and
        // 14 x 14) is about idle lanes, which the lane efficiency above mixes with the masked taps that the small-map
        // kernels compute as zeros; at density 1 every tap is live, so there the lane efficiency is the fraction of
        // launched lanes that produce outputs.
        sb.AppendLine();
        sb.AppendLine("### Lanes that produce outputs at stages 3-4 (small maps)");
        sb.AppendLine();
        sb.AppendLine(inv, $"The lane efficiency of the kernels the launchers run at stages 3-4 (`dwconv_small_kernel`, `dwconv_small_wgrad_kernel`), at density 1 (every tap live: the only loss is lanes whose line or pixel falls outside the map or past the tile, i.e. the fraction of launched lanes that produce outputs) and at density {density:0.0} (the After table's figure: the masked taps these kernels compute as zeros count as idle too). Target: at least half of the lanes produce outputs.");
        sb.AppendLine();
        sb.AppendLine(inv, $"| pass | stage | kernel | lanes producing outputs (density 1) | lane efficiency at density {density:0.0} |");
        sb.AppendLine("|---|---|---|---:|---:|");
        foreach (var st in DwConvModel.SlakTiny.Where(st => SmallChosen(st) || DwConvSmallWgradModel.Applies(st, batch)))
            foreach (string pass in new[] { "fwd", "dgrad", "wgrad" })
            {
                bool wg = pass == "wgrad";
                var full = wg ? Wgrad(false, st, 1.0) : Fwd(false, pass, st, 1.0);
                var at = wg ? Wgrad(false, st, density) : Fwd(false, pass, st, density);
                string kernel = full.Plan.StartsWith("DwConvSmallWgrad", StringComparison.Ordinal) ? "dwconv_small_wgrad_kernel"
                    : full.Plan.StartsWith("DwConvSmall", StringComparison.Ordinal) ? "dwconv_small_kernel" : full.Plan.Split(' ')[0];
                sb.AppendLine(inv, $"| {pass} | {st.Name} | {kernel} | {full.LaneEfficiency:F2} | {at.LaneEfficiency:F2} |");
            }

        // Zero weights against the live-tap list: the sliding kernel's time does not depend on the density, the
        // tap list's falls with it; the crossover is the density below which the tap list is faster.
        sb.AppendLine();
        sb.AppendLine("### Masked taps: zero weights (`dwconv_fused_kernel`, sliding) against the live-tap list, forward");
        sb.AppendLine();
        sb.AppendLine("| stage | density | live-tap list ms | zero weights ms | faster | crossover density |");
        sb.AppendLine("|---|---:|---:|---:|---|---:|");
        foreach (var st in DwConvModel.SlakTiny)
        {
            double lo = 0.001, hi = 1;
            if (Fwd(true, "fwd", st, hi).ModeledMs <= Fwd(false, "fwd", st, hi, false).ModeledMs) lo = hi;
            else
                for (int it = 0; it < 40; it++)
                {
                    double mid = 0.5 * (lo + hi);
                    if (Fwd(true, "fwd", st, mid).ModeledMs < Fwd(false, "fwd", st, mid, false).ModeledMs) lo = mid; else hi = mid;
                }
            foreach (double d in new[] { 1.0, 0.6, 0.3 })
            {
                double t = Fwd(true, "fwd", st, d).ModeledMs, z = Fwd(false, "fwd", st, d, false).ModeledMs;
                sb.AppendLine(inv, $"| {st.Name} | {d:F1} | {t:F3} | {z:F3} | {(t < z ? "live-tap list" : "zero weights")} | {lo:F2} |");
            }
        }
        AppendStrip(sb, rows, st => (d, pass) => Fwd(false, pass, st, d, true), st => (d, pass) => Fwd(false, pass, st, d, false));
        AppendStripWgrad(sb, rows, (st, d) => Wgrad(false, st, d, true), (st, d) => Wgrad(false, st, d, false));
        sb.AppendLine();
        sb.AppendLine(inv, $"Before (live-tap forward and weight gradient, `--variant taplist` and `--variant taps`): kernel-model: {lines["before"]}");
        sb.AppendLine();
        sb.AppendLine(inv, $"Only the forward before its rewrite (`--variant taplist`): kernel-model: {lines["taplist"]}");
        sb.AppendLine();
        sb.AppendLine(inv, $"Only the weight gradient before its rewrite (`--variant taps`): kernel-model: {lines["taps"]}");
        sb.AppendLine();
        sb.AppendLine(inv, $"Only the sliding forward before its image-edge steps (`--variant noedge`, SLAK_DW_EDGE_STEPS=0): kernel-model: {lines["noedge"]}; in-bounds reading: {inBoundsLines["noedge"]}");
        sb.AppendLine();
        sb.AppendLine(inv, $"Only the forward and input gradient before the live-tap strip kernel (`--variant nostrip`, `DwConvStripKernels.Off`: `dwconv_fused_kernel` at stages 1-2): kernel-model: {lines["nostrip"]}; in-bounds reading: {inBoundsLines["nostrip"]}");
        sb.AppendLine();
        sb.AppendLine(inv, $"Only the weight gradient before the strip weight gradient (`--variant nostripwgrad`, `DwConvStripKernels.WgradOff`: `dwconv_fused_wgrad_kernel` at stages 1-2): kernel-model: {lines["nostripwgrad"]}; stage 2: wgrad s2 {S2["nostripwgrad"]}% (strip weight gradient: {S2["sliding"]}%); in-bounds reading: {inBoundsLines["nostripwgrad"]}");
        sb.AppendLine();
        sb.AppendLine(inv, $"Only the weight gradient before its trimmed strips (`--variant fullstrips`, SLAK_DW_WGRAD_TRIM=0: every strip computes 8 taps): kernel-model: {lines["fullstrips"]}; in-bounds reading: {inBoundsLines["fullstrips"]}. Trimmed strips (the default) compute a strip's taps only up to its last live one inside the kernel and start 4 taps later when its first 4 are dead; their full steps run a one-step loop per tap count, counted outright as 8 x count FFMAs and {DwConvModel.ShortStepSlots(1)}-{DwConvModel.ShortStepSlots(7)} other slots per step (loads and an estimated 4 loop instructions), not at the hot loop's share.");
        sb.AppendLine();
        sb.AppendLine(inv, $"The same modeled times against the floor of all in-bounds products, masked taps counted as work (the floor of the same convolution with dense weights, {1 / density:F2}x the live-tap floor): what a kernel that computes masked taps as zeros can at most reach is 100 % here and {100 * density:F0} % in the line below, so at density {density} the line below cannot show 60 % for such a kernel. Not the target's line: reported beside it. `{variant}`: in-bounds reading: {inBoundsLines[variant]}; before: {inBoundsLines["before"]}");
        sb.AppendLine();
        // The live-tap register-tiled body (dwconv_live.cu; no launch uses it yet) beside the current forward.
        double liveShare = HotShare(rows, "dwconv_live", DwConvLiveKernels.KernelName);
        int liveRegs = Row(rows, "dwconv_live", DwConvLiveKernels.KernelName).Resources?.Registers ?? 0;
        sb.AppendLine(inv, $"### Live-tap register-tiled body (`dwconv_live_kernel`, not launched): hot loop FFMA share {liveShare:F2}, {liveRegs} registers");
        sb.AppendLine();
        sb.AppendLine("Forward (the input gradient has the same counts), % of the FMA floor over live taps; staging and tap-list slots are estimates (DwConvLiveModel).");
        sb.AppendLine();
        sb.AppendLine("| stage | density | live body % | lane eff. | occupancy | current forward % |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var st in DwConvModel.SlakTiny.Take(2))
            foreach (double d in new[] { 1.0, 0.6, 0.3 })
            {
                var live = DwConvLiveModel.Forward("fwd", st, batch, d, liveShare);
                double occ = DwConvModel.Occupancy(liveRegs, DwConvLiveKernels.Threads, DwConvLiveModel.SharedBytes(st));
                sb.AppendLine(inv, $"| {st.Name} | {d:F1} | {live.PercentOfFmaFloor:F0} | {live.LaneEfficiency:F2} | {occ:F2} | {Fwd(false, "fwd", st, d).PercentOfFmaFloor:F0} |");
            }
        sb.AppendLine();
        sb.AppendLine(inv, $"kernel-model: {lines[variant]}");
    }

    /// <summary>The strip weight gradient's section: per stage it takes, its short-axis loop's counts per branch and
    /// the modeled weight gradient at densities 1 / 0.6 / 0.3 beside dwconv_fused_wgrad_kernel's.</summary>
    private static void AppendStripWgrad(StringBuilder sb, List<KernelRow> rows, Func<DwConvModel.Stage, double, DwConvModel.Estimate> strip,
                                         Func<DwConvModel.Stage, double, DwConvModel.Estimate> fused)
    {
        var inv = CultureInfo.InvariantCulture;
        var stages = DwConvModel.SlakTiny.Where(st => DwConvStripModel.WgradChosen(st, Batch)).ToList();
        if (stages.Count == 0) return;
        sb.AppendLine();
        sb.AppendLine("### Weight gradient in compile-time strips: `dwconv_strip_wgrad_kernel` against `dwconv_fused_wgrad_kernel` (stages 1-2)");
        sb.AppendLine();
        sb.AppendLine("The strip kernel's grid, block and staged planes; a thread keeps its dy lines in registers and, per short-axis tap, runs the unrolled long-axis taps: a live tap is exactly its in-image products (two chains) and one store of its sum to the block's reduction row, a masked tap its test and branch. After a barrier the threads t < kl add their tap's row in thread order (the block's partial; `column_sum_finalize_kernel` adds the blocks in order). Per short-axis tap, from the sm_90 listing: the taps before the loop's first barrier split by `SassKernel.SkipMix` (`always`, `skippable`: a live tap's products and store), the reduction after it (`reduce always`: every warp; `row sum`: the warps of threads t < kl). Staging, the dy loads and the per-block setup are estimates (DwConvStripModel's constants).");
        sb.AppendLine();
        sb.AppendLine("| stage | branch | regs | taps: always | skippable | of them FFMA | reduce always | row sum |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|");
        foreach (var st in stages)
            foreach (var b in st.Branches)
            {
                var row = Row(rows, DwConvStripModel.Module(st, b), DwConvStripKernels.WgradKernel);
                var c = DwConvStripModel.ReadWgrad(row.Kernel, row.Resources?.Registers ?? 0);
                sb.AppendLine(inv, $"| {st.Name} | {b.Kh}x{b.Kw} | {c.Registers} | {c.Always:F0} | {c.Skippable:F0} | {c.SkippableFfma:F0} | {c.ReduceAlways:F0} | {c.ReduceBody:F0} |");
            }
        sb.AppendLine();
        sb.AppendLine("| stage | density | strip: lane eff. | strip: occupancy | strip: bank ways | strip ms | strip: % of FMA floor | fused ms | fused: % of FMA floor | faster |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var st in stages)
            foreach (double d in new[] { 1.0, 0.6, 0.3 })
            {
                var s = strip(st, d);
                var f = fused(st, d);
                sb.AppendLine(inv, $"| {st.Name} | {d:F1} | {s.LaneEfficiency:F2} | {s.Occupancy:F2} | {s.BankWays} | {s.ModeledMs:F3} | {s.PercentOfFmaFloor:F0} | {f.ModeledMs:F3} | {f.PercentOfFmaFloor:F0} | {(s.ModeledMs < f.ModeledMs ? "strip" : "fused")} |");
            }
    }

    /// <summary>The live-tap strip kernel's section: per stage it takes, its strip loops' counts per branch and the
    /// modeled forward and input gradient at densities 1 / 0.6 / 0.3 beside dwconv_fused_kernel's (zero weights), and
    /// the density below which it is the faster of the two.</summary>
    private static void AppendStrip(StringBuilder sb, List<KernelRow> rows,
                                    Func<DwConvModel.Stage, Func<double, string, DwConvModel.Estimate>> strip,
                                    Func<DwConvModel.Stage, Func<double, string, DwConvModel.Estimate>> fused)
    {
        var inv = CultureInfo.InvariantCulture;
        var stages = DwConvModel.SlakTiny.Where(st => DwConvStripModel.Chosen(st, Batch)).ToList();
        if (stages.Count == 0) return;
        sb.AppendLine();
        sb.AppendLine("### Live taps in compile-time strips: `dwconv_strip_kernel` against `dwconv_fused_kernel` (stages 1-2)");
        sb.AppendLine();
        sb.AppendLine("One launch per branch, a block per channel and group of images, a lane per line along the branch's long axis, the whole line one register strip; the map and the kernel are defines, so the long-axis taps are unrolled and each issues exactly its in-image products. Per short-axis tap (one iteration of the strip loop), from the sm_90 listing (`SassKernel.SkipMix`): `always` = the slots every tap issues (its live-bit test and branch, the 128-bit input and weight loads), `skippable` = what a masked tap's branch jumps over (its products). A warp issues always + density x skippable per iteration. Staging, stores and the per-block setup are estimates (DwConvStripModel's constants), not counted in the machine code.");
        sb.AppendLine();
        sb.AppendLine("| stage | branch | regs | strip loops: always | skippable | of them FFMA | FFMA share at 1 / 0.6 / 0.3 |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---|");
        foreach (var st in stages)
            foreach (var b in st.Branches)
            {
                var row = Row(rows, DwConvStripModel.Module(st, b), DwConvStripKernels.Kernel);
                var l = DwConvStripModel.Read(row.Kernel, row.Resources?.Registers ?? 0);
                string S(double d) => ((l.AlwaysFfma + d * l.SkippableFfma) / (l.Always + d * l.Skippable)).ToString("F2", inv);
                sb.AppendLine(inv, $"| {st.Name} | {b.Kh}x{b.Kw} | {l.Registers} | {l.Always} | {l.Skippable} | {l.SkippableFfma} | {S(1)} / {S(0.6)} / {S(0.3)} |");
            }
        sb.AppendLine();
        sb.AppendLine("| pass | stage | density | strip: lane eff. | strip: occupancy | strip: bank ways | strip ms | strip: % of FMA floor | fused ms | fused: % of FMA floor | faster |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var st in stages)
            foreach (string pass in new[] { "fwd", "dgrad" })
                foreach (double d in new[] { 1.0, 0.6, 0.3 })
                {
                    var s = strip(st)(d, pass);
                    var f = fused(st)(d, pass);
                    sb.AppendLine(inv, $"| {pass} | {st.Name} | {d:F1} | {s.LaneEfficiency:F2} | {s.Occupancy:F2} | {s.BankWays} | {s.ModeledMs:F3} | {s.PercentOfFmaFloor:F0} | {f.ModeledMs:F3} | {f.PercentOfFmaFloor:F0} | {(s.ModeledMs < f.ModeledMs ? "strip" : "fused")} |");
                }
        // The crossover: the strip kernel's time falls with the density, the fused kernel's does not.
        sb.AppendLine();
        foreach (var st in stages)
        {
            string pass = "fwd";
            double d1 = 1.0;
            bool stripAtOne = strip(st)(d1, pass).ModeledMs < fused(st)(d1, pass).ModeledMs;
            string text;
            if (stripAtOne) text = "the strip kernel is faster at every density up to 1 (no crossover)";
            else
            {
                double lo = 0.001, hi = 1;
                for (int it = 0; it < 40; it++)
                {
                    double mid = 0.5 * (lo + hi);
                    if (strip(st)(mid, pass).ModeledMs < fused(st)(mid, pass).ModeledMs) lo = mid; else hi = mid;
                }
                text = string.Create(inv, $"the strip kernel is faster below a density of {lo:F2}");
            }
            sb.AppendLine(inv, $"Crossover, forward {st.Name}: {text}.");
            sb.AppendLine();
        }
    }

    private static string Commit()
    {
        try { return RunTool("git", "rev-parse", "--short", "HEAD").Trim(); }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception) { return "unknown"; }
    }

    private static string? FindNvdisasm()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/local/cuda/bin"))
        {
            string p = Path.Combine(dir, "nvdisasm");
            if (File.Exists(p)) return p;
        }
        return null;
    }

    private static string RunTool(string exe, params string[] args)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{exe} {string.Join(' ', args)} failed ({p.ExitCode}): {stderr}");
        return stdout;
    }
}
