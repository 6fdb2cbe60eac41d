// On-disk cache of compiled kernel files. Key = SHA-256 of (every source text, the file compiled, the NVRTC
// arguments, the NVRTC version, the target architecture): any change to any header recompiles. Entries are
// written to a temporary file and renamed into place (readers never see half an entry); each entry carries a
// SHA-256 of its contents, so a truncated or corrupt entry is detected, deleted and rebuilt.
using System.Security.Cryptography;
using System.Text;

namespace Slak.Cuda.Compilation;

/// <summary>A folder of compiled kernel modules keyed by everything that affects the compiled image.</summary>
internal sealed class KernelCache
{
    /// <summary>Environment variable that overrides the cache folder.</summary>
    public const string DirectoryVariable = "SLAK_KERNEL_CACHE";

    private static readonly byte[] Magic = "SLAKKC01"u8.ToArray();
    private long _hits;
    private long _misses;
    private long _corrupt;

    /// <summary>Creates a cache rooted at <paramref name="directory"/> (created on first write).</summary>
    public KernelCache(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Directory = Path.GetFullPath(directory);
    }

    /// <summary>The cache folder.</summary>
    public string Directory { get; }

    /// <summary>Entries served from disk.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Entries compiled (absent or corrupt).</summary>
    public long Misses => Interlocked.Read(ref _misses);

    /// <summary>Corrupt entries found (and rebuilt).</summary>
    public long CorruptEntries => Interlocked.Read(ref _corrupt);

    /// <summary>Prebuilt CUBINs consulted before this cache (default: the folder named by
    /// <see cref="PrebuiltKernelCache.DirectoryVariable"/>, if any); see <see cref="PrebuiltKernelCache"/>.</summary>
    public PrebuiltKernelCache? Prebuilt { get; init; } = PrebuiltKernelCache.FromEnvironment();

    /// <summary>The default folder: $SLAK_KERNEL_CACHE, else $XDG_CACHE_HOME/slak/kernels, else
    /// ~/.cache/slak/kernels.</summary>
    public static string DefaultDirectory(Func<string, string?>? getEnv = null)
    {
        getEnv ??= Environment.GetEnvironmentVariable;
        if (getEnv(DirectoryVariable) is { Length: > 0 } explicitDir)
        {
            return explicitDir;
        }

        if (getEnv("XDG_CACHE_HOME") is { Length: > 0 } xdg)
        {
            return Path.Combine(xdg, "slak", "kernels");
        }

        string home = getEnv("HOME") is { Length: > 0 } h ? h : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return Path.Combine(home, ".cache", "slak", "kernels");
    }

    /// <summary>The cache key (hex SHA-256) of compiling <paramref name="file"/> of
    /// <paramref name="sources"/>.</summary>
    public static string Key(KernelSources sources, string file, IReadOnlyList<string> arguments,
                             (int Major, int Minor) nvrtcVersion, string architecture)
    {
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(arguments);
        var text = new StringBuilder();
        text.Append("sources=").Append(sources.ContentHash).Append('\n');
        text.Append("file=").Append(file).Append('\n');
        foreach (string a in arguments)
        {
            text.Append("arg=").Append(a).Append('\n');
        }

        text.Append($"nvrtc={nvrtcVersion.Major}.{nvrtcVersion.Minor}\narch={architecture}\n");
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>Returns the prebuilt module for <paramref name="file"/> (see <see cref="Prebuilt"/>), else the
    /// cached one, else compiles and stores it.</summary>
    public CompiledModule GetOrCompile(NvrtcCompiler compiler, string file, CompileOptions options)
    {
        ArgumentNullException.ThrowIfNull(compiler);
        ArgumentNullException.ThrowIfNull(options);
        if (Prebuilt?.TryGet(compiler.Sources, file, options) is { } prebuilt)
        {
            return prebuilt;
        }

        (bool cubin, int arch) = compiler.ChooseTarget(options);
        string architecture = cubin ? $"sm_{arch}" : $"compute_{arch}";
        string key = Key(compiler.Sources, file, compiler.Arguments(options), compiler.Version, architecture);
        return GetOrCreate(key, file, () => compiler.Compile(file, options));
    }

    /// <summary>Returns the entry <paramref name="key"/> if it is present and intact, else calls
    /// <paramref name="compile"/> and stores its result. A failure to write the cache is not an error (the
    /// module is still returned; the cache is an optimisation).</summary>
    public CompiledModule GetOrCreate(string key, string file, Func<CompiledModule> compile)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(compile);
        if (key.Any(c => !char.IsAsciiHexDigit(c)))
        {
            throw new ArgumentException($"cache key must be hex, got '{key}'", nameof(key));
        }

        string path = EntryPath(key);
        if (TryRead(path, file) is { } cached)
        {
            Interlocked.Increment(ref _hits);
            return cached;
        }

        Interlocked.Increment(ref _misses);
        CompiledModule module = compile();
        try
        {
            Write(path, module);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            System.Diagnostics.Debug.WriteLine($"slak: kernel cache write to '{path}' failed: {e.Message}");
        }

        return module;
    }

    /// <summary>The file that holds entry <paramref name="key"/>.</summary>
    public string EntryPath(string key) => Path.Combine(Directory, key + ".kmod");

    private CompiledModule? TryRead(string path, string file)
    {
        byte[] data;
        try
        {
            if (!File.Exists(path))
            {
                return null;
            }

            data = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        CompiledModule? module = Decode(data, file);
        if (module is null)
        {
            Interlocked.Increment(ref _corrupt);
            try
            {
                File.Delete(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A stale entry that cannot be deleted is simply overwritten by the rebuild.
            }
        }

        return module;
    }

    private static void Write(string path, CompiledModule module)
    {
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        byte[] data = Encode(module);
        string temp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            File.WriteAllBytes(temp, data);
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }

    /// <summary>Layout: magic, isCubin (int32), then architecture, log and image as (int32 length, bytes), then
    /// SHA-256 of everything before it.</summary>
    internal static byte[] Encode(CompiledModule module)
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(module.IsCubin ? 1 : 0);
            WriteBlock(w, Encoding.UTF8.GetBytes(module.Architecture));
            WriteBlock(w, Encoding.UTF8.GetBytes(module.Log));
            WriteBlock(w, module.Image);
        }

        byte[] body = ms.ToArray();
        return [.. body, .. SHA256.HashData(body)];

        static void WriteBlock(BinaryWriter w, byte[] bytes)
        {
            w.Write(bytes.Length);
            w.Write(bytes);
        }
    }

    /// <summary>Decodes an entry, or null when it is truncated, inconsistent or fails its checksum.</summary>
    internal static CompiledModule? Decode(byte[] data, string file)
    {
        const int hashBytes = 32;
        if (data.Length < Magic.Length + 4 + hashBytes)
        {
            return null;
        }

        ReadOnlySpan<byte> body = data.AsSpan(0, data.Length - hashBytes);
        if (!SHA256.HashData(body).AsSpan().SequenceEqual(data.AsSpan(data.Length - hashBytes)) ||
            !body[..Magic.Length].SequenceEqual(Magic))
        {
            return null;
        }

        int pos = Magic.Length;
        if (!TryInt(body, ref pos, out int isCubin) || isCubin is not (0 or 1) ||
            !TryBlock(body, ref pos, out byte[] arch) || !TryBlock(body, ref pos, out byte[] log) ||
            !TryBlock(body, ref pos, out byte[] image) || pos != body.Length)
        {
            return null;
        }

        return new CompiledModule(file, Encoding.UTF8.GetString(arch), isCubin == 1, image, Encoding.UTF8.GetString(log));

        static bool TryInt(ReadOnlySpan<byte> span, ref int pos, out int value)
        {
            value = 0;
            if (span.Length - pos < 4)
            {
                return false;
            }

            value = BitConverter.ToInt32(span.Slice(pos, 4));
            pos += 4;
            return true;
        }

        static bool TryBlock(ReadOnlySpan<byte> span, ref int pos, out byte[] bytes)
        {
            bytes = [];
            if (!TryInt(span, ref pos, out int n) || n < 0 || span.Length - pos < n)
            {
                return false;
            }

            bytes = span.Slice(pos, n).ToArray();
            pos += n;
            return true;
        }
    }
}
