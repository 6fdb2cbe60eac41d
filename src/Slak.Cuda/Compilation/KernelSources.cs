// The CUDA sources the runtime compiles: by default the cuda/{kernels,common,include} files embedded in this
// assembly (see Directory.Build.targets), keyed by their path relative to cuda/. Maps each `extern "C" __global__`
// kernel to the file that defines it, and presents headers to NVRTC under every name a kernel may include them by,
// so no include path on disk is ever needed.
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Slak.Cuda.Compilation;

/// <summary>A set of CUDA source files (kernels and headers) keyed by their path relative to <c>cuda/</c>.</summary>
internal sealed partial class KernelSources
{
    private static readonly Lazy<KernelSources> EmbeddedSources = new(LoadEmbedded);

    private readonly SortedDictionary<string, string> _files;
    private readonly Dictionary<string, string> _kernelToFile;
    private readonly Dictionary<string, IReadOnlyList<string>> _fileToKernels;

    /// <summary>Creates a source set from (relative path, text) pairs; kernel files are the <c>kernels/**.cu</c>
    /// entries. Throws when two files define a kernel of the same name.</summary>
    public KernelSources(IReadOnlyDictionary<string, string> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        _files = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach ((string path, string text) in files)
        {
            string key = path.Replace('\\', '/');
            if (key.Length == 0 || key.StartsWith('/') || key.Contains("..", StringComparison.Ordinal))
            {
                throw new ArgumentException($"source paths must be relative to cuda/, got '{path}'", nameof(files));
            }

            _files[key] = text ?? throw new ArgumentException($"source '{path}' has null text", nameof(files));
        }

        _kernelToFile = new Dictionary<string, string>(StringComparer.Ordinal);
        _fileToKernels = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (string file in KernelFiles)
        {
            IReadOnlyList<string> names = FindKernelNames(_files[file]);
            _fileToKernels[file] = names;
            foreach (string name in names)
            {
                if (_kernelToFile.TryGetValue(name, out string? other))
                {
                    throw new ArgumentException(
                        $"kernel '{name}' is defined in both '{other}' and '{file}'; kernel names must be unique",
                        nameof(files));
                }

                _kernelToFile[name] = file;
            }
        }

        ContentHash = ComputeHash(_files);
    }

    /// <summary>The sources embedded in Slak.Cuda (may be empty while no kernel exists yet).</summary>
    public static KernelSources Embedded => EmbeddedSources.Value;

    /// <summary>Every file, keyed by path relative to cuda/ ('/' separators), in ordinal order.</summary>
    public IReadOnlyDictionary<string, string> Files => _files;

    /// <summary>The kernel translation units (<c>kernels/**.cu</c>), in ordinal order.</summary>
    public IReadOnlyList<string> KernelFiles =>
        _files.Keys.Where(k => k.StartsWith("kernels/", StringComparison.Ordinal) &&
                               k.EndsWith(".cu", StringComparison.Ordinal)).ToList();

    /// <summary>Kernel name → defining file.</summary>
    public IReadOnlyDictionary<string, string> KernelToFile => _kernelToFile;

    /// <summary>SHA-256 (hex) over every path and text; part of the kernel cache key.</summary>
    public string ContentHash { get; }

    /// <summary>Reads a source set from a <c>cuda/</c> folder on disk (development and tests).</summary>
    public static KernelSources FromDirectory(string cudaRoot)
    {
        if (!Directory.Exists(cudaRoot))
        {
            throw new DirectoryNotFoundException($"CUDA source folder '{cudaRoot}' does not exist");
        }

        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach ((string folder, string pattern) in new[] { ("kernels", "*.cu"), ("common", "*.cuh"), ("include", "*.h") })
        {
            string dir = Path.Combine(cudaRoot, folder);
            if (!Directory.Exists(dir))
            {
                continue;
            }

            foreach (string path in Directory.EnumerateFiles(dir, pattern, SearchOption.AllDirectories))
            {
                files[Path.GetRelativePath(cudaRoot, path).Replace('\\', '/')] = File.ReadAllText(path);
            }
        }

        return new KernelSources(files);
    }

    /// <summary>The file that defines kernel <paramref name="kernelName"/>; throws naming the known kernels.</summary>
    public string FileOfKernel(string kernelName)
    {
        ArgumentException.ThrowIfNullOrEmpty(kernelName);
        if (_kernelToFile.TryGetValue(kernelName, out string? file))
        {
            return file;
        }

        string known = _kernelToFile.Count == 0 ? "none" : string.Join(", ", _kernelToFile.Keys.Order(StringComparer.Ordinal));
        throw new ArgumentException(
            $"no kernel named '{kernelName}' in the CUDA sources (known kernels: {known})", nameof(kernelName));
    }

    /// <summary>The kernels defined in <paramref name="file"/>.</summary>
    public IReadOnlyList<string> KernelsInFile(string file) =>
        _fileToKernels.TryGetValue(file, out IReadOnlyList<string>? names)
            ? names
            : throw new ArgumentException($"'{file}' is not a kernel file of these sources", nameof(file));

    /// <summary>Every header as (include name, text): each under its path relative to cuda/, relative to its top
    /// folder ("slak_common.cuh", "slak/slak_params.h") and relative to cuda/kernels ("../common/...").
    /// When two headers would claim one include name, the first (ordinal path order) keeps it.</summary>
    public IReadOnlyList<(string IncludeName, string Text)> Headers()
    {
        var result = new List<(string, string)>();
        var taken = new HashSet<string>(StringComparer.Ordinal);
        foreach ((string path, string text) in _files)
        {
            if (path.EndsWith(".cu", StringComparison.Ordinal))
            {
                continue;
            }

            int slash = path.IndexOf('/', StringComparison.Ordinal);
            string[] names = slash < 0 ? [path, "../" + path] : [path, path[(slash + 1)..], "../" + path];
            foreach (string name in names)
            {
                if (taken.Add(name))
                {
                    result.Add((name, text));
                }
            }
        }

        return result;
    }

    /// <summary>The names of the <c>extern "C" __global__</c> kernels defined in <paramref name="source"/>
    /// (comments and <c>__launch_bounds__(...)</c> ignored), in order of appearance.</summary>
    public static IReadOnlyList<string> FindKernelNames(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        string code = CommentPattern().Replace(source, m => m.Value.StartsWith("//", StringComparison.Ordinal) ? "" : " ");
        code = LaunchBoundsPattern().Replace(code, " ");
        return KernelPattern().Matches(code).Select(m => m.Groups["name"].Value).ToList();
    }

    private static string ComputeHash(SortedDictionary<string, string> files)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach ((string path, string text) in files)
        {
            sha.AppendData(Encoding.UTF8.GetBytes($"{path.Length}:{path}\n{text.Length}:"));
            sha.AppendData(Encoding.UTF8.GetBytes(text));
        }

        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    private static KernelSources LoadEmbedded()
    {
        Assembly assembly = typeof(KernelSources).Assembly;
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string name in assembly.GetManifestResourceNames())
        {
            if (!(name.StartsWith("kernels/", StringComparison.Ordinal) || name.StartsWith("common/", StringComparison.Ordinal) ||
                  name.StartsWith("include/", StringComparison.Ordinal)))
            {
                continue;
            }

            using Stream stream = assembly.GetManifestResourceStream(name)
                ?? throw new InvalidOperationException($"embedded resource '{name}' is listed but cannot be opened");
            using var reader = new StreamReader(stream, Encoding.UTF8);
            files[name] = reader.ReadToEnd();
        }

        return new KernelSources(files);
    }

    [GeneratedRegex(@"//[^\n]*|/\*.*?\*/", RegexOptions.Singleline)]
    private static partial Regex CommentPattern();

    [GeneratedRegex(@"__launch_bounds__\s*\([^()]*\)")]
    private static partial Regex LaunchBoundsPattern();

    [GeneratedRegex(@"extern\s+""C""\s+(?:__\w+__\s+)*__global__\s+(?:\w+\s+)*?(?<name>[A-Za-z_]\w*)\s*\(")]
    private static partial Regex KernelPattern();
}
