// Finds and loads a CUDA library, recording every probe. Order: the folders of SLAK_CUDA_LIBRARY_PATH (an
// explicit user choice wins), then the bare versioned names (the loader's own search: ld.so.cache, LD_LIBRARY_PATH),
// then CUDA_PATH, /usr/local/cuda, the distribution and WSL folders, and the nvidia/*/lib folders of Python's
// CUDA wheels. We load with NativeLibrary.Load + GetExport instead of a DllImport resolver: an assembly may
// register only one resolver (the emulator binding needs its own), and explicit loading lets each missing
// symbol and each failed probe be reported precisely.
using System.Runtime.InteropServices;

namespace Slak.Cuda.Interop;

/// <summary>Locates and loads native CUDA libraries with a full probe trace.</summary>
internal static class NativeLibraryProbe
{
    /// <summary>Environment variable: extra folders (path-separator separated) searched first.</summary>
    public const string LibraryPathVariable = "SLAK_CUDA_LIBRARY_PATH";

    /// <summary>Loads <paramref name="kind"/> from the standard locations.</summary>
    public static LoadedNativeLibrary Load(CudaLibraryKind kind, Func<string, string?>? getEnv = null) =>
        Load(CudaLibraryNames.Display(kind), CudaLibraryNames.Candidates(kind), getEnv ?? Environment.GetEnvironmentVariable);

    /// <summary>Loads the first of <paramref name="names"/> that loads, searching the standard folders.
    /// Throws <see cref="CudaLibraryNotFoundException"/> listing every probe when none loads.</summary>
    public static LoadedNativeLibrary Load(string display, IReadOnlyList<string> names, Func<string, string?> getEnv)
    {
        ArgumentNullException.ThrowIfNull(names);
        if (names.Count == 0)
        {
            throw new ArgumentException($"no candidate file names given for {display}", nameof(names));
        }

        var probes = new List<string>();
        string[] userFolders = SplitPath(getEnv(LibraryPathVariable));
        foreach (string folder in userFolders)
        {
            if (TryFolder(folder, names, probes, $"{LibraryPathVariable}") is { } lib)
            {
                return lib;
            }
        }

        if (userFolders.Length == 0)
        {
            probes.Add($"{LibraryPathVariable}: not set");
        }

        foreach (string name in names)
        {
            if (TryLoad(name, probes, "system search") is { } handle)
            {
                return new LoadedNativeLibrary(display, name, handle, probes);
            }
        }

        foreach (string folder in StandardFolders(getEnv))
        {
            if (TryFolder(folder, names, probes, "standard folder") is { } lib)
            {
                return lib;
            }
        }

        throw new CudaLibraryNotFoundException(display, names, probes);

        LoadedNativeLibrary? TryFolder(string folder, IReadOnlyList<string> candidates, List<string> trace, string why)
        {
            if (!Directory.Exists(folder))
            {
                trace.Add($"{folder} ({why}): folder does not exist");
                return null;
            }

            var missing = new List<string>();
            foreach (string name in candidates)
            {
                string path = Path.Combine(folder, name);
                if (!File.Exists(path))
                {
                    missing.Add(name);
                    continue;
                }

                if (TryLoad(path, trace, why) is { } handle)
                {
                    return new LoadedNativeLibrary(display, path, handle, trace);
                }
            }

            if (missing.Count > 0)
            {
                trace.Add($"{folder} ({why}): no {string.Join(", ", missing)}");
            }

            return null;
        }
    }

    /// <summary>The fixed folders searched after the loader's own search, in order (existing or not).</summary>
    public static IReadOnlyList<string> StandardFolders(Func<string, string?> getEnv)
    {
        var folders = new List<string>();
        if (getEnv("CUDA_PATH") is { Length: > 0 } cudaPath)
        {
            folders.Add(Path.Combine(cudaPath, "lib64"));
            folders.Add(Path.Combine(cudaPath, "lib"));
            folders.Add(Path.Combine(cudaPath, "bin"));
        }

        if (!OperatingSystem.IsWindows())
        {
            folders.Add("/usr/local/cuda/lib64");
            folders.Add("/usr/lib/x86_64-linux-gnu");
            folders.Add("/usr/lib/wsl/lib");
        }

        folders.AddRange(PythonWheelFolders(getEnv));
        return folders.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>The nvidia/*/lib folders of every Python site-packages/dist-packages folder we can see.</summary>
    public static IReadOnlyList<string> PythonWheelFolders(Func<string, string?> getEnv)
    {
        var roots = new List<string>();
        foreach (string? prefix in new[] { getEnv("VIRTUAL_ENV"), getEnv("CONDA_PREFIX") })
        {
            if (!string.IsNullOrEmpty(prefix))
            {
                roots.Add(Path.Combine(prefix, "lib"));
            }
        }

        roots.Add("/usr/lib");
        roots.Add("/usr/local/lib");
        if (getEnv("HOME") is { Length: > 0 } home)
        {
            roots.Add(Path.Combine(home, ".local", "lib"));
        }

        var result = new List<string>();
        foreach (string root in roots)
        {
            foreach (string python in SafeDirectories(root, "python3*"))
            {
                foreach (string packages in new[] { "site-packages", "dist-packages" })
                {
                    string nvidia = Path.Combine(python, packages, "nvidia");
                    foreach (string component in SafeDirectories(nvidia, "*"))
                    {
                        string lib = Path.Combine(component, "lib");
                        if (Directory.Exists(lib))
                        {
                            result.Add(lib);
                        }
                    }
                }
            }
        }

        return result;
    }

    private static IEnumerable<string> SafeDirectories(string root, string pattern)
    {
        try
        {
            return Directory.Exists(root) ? Directory.GetDirectories(root, pattern).Order(StringComparer.Ordinal) : [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static string[] SplitPath(string? value) =>
        string.IsNullOrWhiteSpace(value)
            ? []
            : value.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static nint? TryLoad(string nameOrPath, List<string> probes, string why)
    {
        try
        {
            nint handle = NativeLibrary.Load(nameOrPath);
            probes.Add($"{nameOrPath} ({why}): loaded");
            return handle;
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            // The runtime's message repeats dlerror() for every variant it tried; the first line is enough.
            string reason = e.Message.ReplaceLineEndings(" ");
            if (reason.Length > 200)
            {
                reason = reason[..200] + "...";
            }

            probes.Add($"{nameOrPath} ({why}): {reason}");
            return null;
        }
    }
}
