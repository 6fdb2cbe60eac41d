// A read-only folder of kernel modules compiled ahead of time, for machines whose time is too dear to spend in NVRTC
// (the GPU check's 15-minute window: bench/gpu/prepare.sh builds one for sm_90 with the local NVRTC 11.8 and carries
// it along). Why a separate folder and not the ordinary cache: the ordinary key contains the NVRTC version, and the
// GPU machine loads its own, newer NVRTC (the newest found is used), so a carried ordinary cache would never hit.
// A prebuilt folder records, in its manifest, the NVRTC version and the source hash it was built from; a lookup
// computes the ordinary key with that recorded version (and CUBIN arguments for the device's exact sm_XY), so an
// entry is used only for the same sources, options and architecture. A CUBIN for sm_XY loads on any driver that
// supports the device, whatever toolkit made it. Anything not found (other sources, another architecture, extra
// defines) falls through to the ordinary cache and NVRTC. Set SLAK_KERNEL_PREBUILT to the folder to use it.
using System.Globalization;
using System.Text;

namespace Slak.Cuda.Compilation;

/// <summary>Prebuilt CUBINs keyed like <see cref="KernelCache"/> with the NVRTC version recorded at build
/// time.</summary>
internal sealed class PrebuiltKernelCache
{
    /// <summary>Environment variable naming the prebuilt folder.</summary>
    public const string DirectoryVariable = "SLAK_KERNEL_PREBUILT";

    /// <summary>The manifest file of a prebuilt folder.</summary>
    public const string ManifestName = "prebuilt.txt";

    private long _hits;

    private PrebuiltKernelCache(string directory, (int Major, int Minor) nvrtc, string sourcesHash, IReadOnlyList<string> architectures)
    {
        Directory = directory;
        NvrtcVersion = nvrtc;
        SourcesHash = sourcesHash;
        Architectures = architectures;
    }

    /// <summary>The folder.</summary>
    public string Directory { get; }

    /// <summary>The NVRTC version that compiled the entries.</summary>
    public (int Major, int Minor) NvrtcVersion { get; }

    /// <summary>The <see cref="KernelSources.ContentHash"/> of the sources compiled.</summary>
    public string SourcesHash { get; }

    /// <summary>The architectures built ("sm_90", ...).</summary>
    public IReadOnlyList<string> Architectures { get; }

    /// <summary>Modules served from this folder.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>The folder named by <see cref="DirectoryVariable"/>, or null when the variable is unset or empty.
    /// Throws <see cref="InvalidOperationException"/> when it names a folder without a valid manifest.</summary>
    public static PrebuiltKernelCache? FromEnvironment(Func<string, string?>? getEnv = null)
    {
        getEnv ??= Environment.GetEnvironmentVariable;
        return getEnv(DirectoryVariable) is { Length: > 0 } dir ? Open(dir) : null;
    }

    /// <summary>Opens a prebuilt folder; throws <see cref="InvalidOperationException"/> naming the problem when its
    /// manifest is missing or malformed.</summary>
    public static PrebuiltKernelCache Open(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        string full = Path.GetFullPath(directory);
        string manifest = Path.Combine(full, ManifestName);
        if (!File.Exists(manifest))
        {
            throw new InvalidOperationException(
                $"{DirectoryVariable}='{directory}' has no {ManifestName}; build it with Slak.GpuCheck --build-kernel-cache");
        }

        var fields = File.ReadAllLines(manifest)
            .Select(l => l.Split('=', 2))
            .Where(p => p.Length == 2)
            .GroupBy(p => p[0].Trim(), StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(p => p[1].Trim()).ToList(), StringComparer.Ordinal);
        string One(string key) => fields.TryGetValue(key, out var v) && v.Count == 1 && v[0].Length > 0
            ? v[0]
            : throw new InvalidOperationException($"{manifest}: needs exactly one '{key}=' line");
        string[] version = One("nvrtc").Split('.');
        if (version.Length != 2 || !int.TryParse(version[0], NumberStyles.None, CultureInfo.InvariantCulture, out int major) ||
            !int.TryParse(version[1], NumberStyles.None, CultureInfo.InvariantCulture, out int minor))
        {
            throw new InvalidOperationException($"{manifest}: nvrtc must look like 11.8, got '{One("nvrtc")}'");
        }

        IReadOnlyList<string> archs = fields.TryGetValue("arch", out var a) ? a : [];
        return new PrebuiltKernelCache(full, (major, minor), One("sources"), archs);
    }

    /// <summary>The entry key of <paramref name="file"/> compiled to CUBIN for <paramref name="options"/>' exact
    /// architecture by NVRTC <paramref name="nvrtc"/> (the ordinary <see cref="KernelCache.Key"/>).</summary>
    public static string Key(KernelSources sources, string file, CompileOptions options, (int Major, int Minor) nvrtc)
    {
        ArgumentNullException.ThrowIfNull(options);
        return KernelCache.Key(sources, file, options.ToArguments(cubin: true, options.ArchNumber), nvrtc, $"sm_{options.ArchNumber}");
    }

    /// <summary>The prebuilt CUBIN of <paramref name="file"/> for <paramref name="options"/>, or null when this folder
    /// has none for these sources, options and architecture (or the entry is damaged).</summary>
    public CompiledModule? TryGet(KernelSources sources, string file, CompileOptions options)
    {
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(options);
        if (!string.Equals(sources.ContentHash, SourcesHash, StringComparison.Ordinal) || options.ForcePtx)
        {
            return null;
        }

        string path = Path.Combine(Directory, Key(sources, file, options, NvrtcVersion) + ".kmod");
        try
        {
            if (!File.Exists(path))
            {
                return null;
            }

            CompiledModule? module = KernelCache.Decode(File.ReadAllBytes(path), file);
            if (module is null || !module.IsCubin || module.Architecture != $"sm_{options.ArchNumber}")
            {
                return null;
            }

            Interlocked.Increment(ref _hits);
            return module;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Compiles every kernel file of <paramref name="sources"/> to CUBIN for sm_<paramref name="arch"/> with
    /// the NVRTC found here and writes them, with the manifest, into <paramref name="directory"/> (which it empties of
    /// older entries), then each of <paramref name="specializations"/> (a file compiled with extra defines, as a
    /// launcher asks for it through <c>IGpuDevice.GetKernel(name, specialization)</c>). Throws when this NVRTC cannot
    /// produce CUBIN for that architecture. Returns one line per module.</summary>
    public static IReadOnlyList<string> Build(string directory, KernelSources sources, int arch, IReadOnlyList<string>? defines = null,
                                              IReadOnlyList<(string File, IReadOnlyList<string> Defines)>? specializations = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ArgumentNullException.ThrowIfNull(sources);
        var compiler = new NvrtcCompiler(sources);
        var options = new CompileOptions(arch / 10, arch % 10) { Defines = defines ?? [] };
        (bool cubin, int chosen) = compiler.ChooseTarget(options);
        if (!cubin || chosen != arch || !compiler.Arguments(options).SequenceEqual(options.ToArguments(true, arch)))
        {
            throw new NotSupportedException(
                $"NVRTC {compiler.Version.Major}.{compiler.Version.Minor} cannot compile CUBIN for sm_{arch} " +
                $"(it would produce {(cubin ? "sm" : "compute")}_{chosen})");
        }

        System.IO.Directory.CreateDirectory(directory);
        foreach (string old in System.IO.Directory.EnumerateFiles(directory, "*.kmod"))
        {
            File.Delete(old);
        }

        var lines = new List<string>();
        foreach (string file in sources.KernelFiles)
        {
            CompiledModule module = compiler.Compile(file, options);
            string key = Key(sources, file, options, compiler.Version);
            File.WriteAllBytes(Path.Combine(directory, key + ".kmod"), KernelCache.Encode(module));
            lines.Add($"{file}: {module.Architecture} {module.Image.Length} bytes -> {key}.kmod");
        }

        foreach ((string file, IReadOnlyList<string> extra) in specializations ?? [])
        {
            var specialized = options with { Defines = [.. options.Defines, .. extra] };
            CompiledModule module = compiler.Compile(file, specialized);
            string key = Key(sources, file, specialized, compiler.Version);
            File.WriteAllBytes(Path.Combine(directory, key + ".kmod"), KernelCache.Encode(module));
            lines.Add($"{file} [{string.Join(' ', extra)}]: {module.Architecture} {module.Image.Length} bytes -> {key}.kmod");
        }

        var manifest = new StringBuilder();
        manifest.Append(CultureInfo.InvariantCulture, $"nvrtc={compiler.Version.Major}.{compiler.Version.Minor}\n");
        manifest.Append(CultureInfo.InvariantCulture, $"sources={sources.ContentHash}\n");
        manifest.Append(CultureInfo.InvariantCulture, $"arch=sm_{arch}\n");
        File.WriteAllText(Path.Combine(directory, ManifestName), manifest.ToString());
        return lines;
    }
}
