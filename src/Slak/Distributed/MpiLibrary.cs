// A thin binding of Open MPI's libmpi.so.40 (Debian's openmpi-bin / libopenmpi-dev): the dozen functions data-parallel
// training needs, bound as unmanaged function pointers from NativeLibrary.Load + GetExport, so that a machine without
// MPI loads Slak normally and only `mpirun ... slak train` touches the library. Open MPI's handles are pointers to
// exported globals (MPI_COMM_WORLD is &ompi_mpi_comm_world, MPI_FLOAT is &ompi_mpi_float, MPI_SUM is &ompi_mpi_op_sum:
// mpi.h's OMPI_PREDEFINED_GLOBAL), so they are the addresses of those exports. MPICH-family libraries use integer
// handles and are not supported (docs/data-parallel.md says why we bind Open MPI ourselves instead of MPI.NET).
using System.Runtime.InteropServices;

namespace Slak.Distributed;

/// <summary>The Open MPI entry points Slak uses.</summary>
internal sealed unsafe class MpiLibrary
{
    /// <summary>MPI_SUCCESS.</summary>
    public const int Success = 0;

    /// <summary>MPI_THREAD_SERIALIZED (mpi.h's enum: SINGLE 0, FUNNELED 1, SERIALIZED 2, MULTIPLE 3).</summary>
    public const int ThreadSerialized = 2;

    /// <summary>File names tried, versioned first (a runtime-only install has no unversioned link).</summary>
    public static readonly string[] Candidates = ["libmpi.so.40", "libmpi.so"];

    private static readonly Lazy<MpiLibrary> Shared = new(() => new MpiLibrary(), LazyThreadSafetyMode.ExecutionAndPublication);

    public readonly delegate* unmanaged<int*, byte***, int, int*, int> MPI_Init_thread;
    public readonly delegate* unmanaged<int*, int> MPI_Initialized;
    public readonly delegate* unmanaged<int*, int> MPI_Finalized;
    public readonly delegate* unmanaged<int> MPI_Finalize;
    public readonly delegate* unmanaged<nint, int, int> MPI_Abort;
    public readonly delegate* unmanaged<nint, int*, int> MPI_Comm_rank;
    public readonly delegate* unmanaged<nint, int*, int> MPI_Comm_size;
    public readonly delegate* unmanaged<nint, int> MPI_Barrier;
    public readonly delegate* unmanaged<nint, nint*, int> MPI_Ibarrier;
    public readonly delegate* unmanaged<void*, void*, int, nint, nint, nint, int> MPI_Allreduce;
    public readonly delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int> MPI_Iallreduce;
    public readonly delegate* unmanaged<void*, int, nint, int, nint, int> MPI_Bcast;
    public readonly delegate* unmanaged<void*, int, nint, int, nint, nint*, int> MPI_Ibcast;
    public readonly delegate* unmanaged<void*, int, nint, void*, int, nint, int, nint, nint*, int> MPI_Igather;
    public readonly delegate* unmanaged<nint*, int*, void*, int> MPI_Test;
    public readonly delegate* unmanaged<nint*, void*, int> MPI_Wait;
    public readonly delegate* unmanaged<int, byte*, int*, int> MPI_Error_string;
    public readonly delegate* unmanaged<byte*, int*, int> MPI_Get_library_version;

    private MpiLibrary()
    {
        string? path = null;
        var tried = new List<string>();
        nint handle = 0;
        foreach (string name in Candidates)
        {
            if (NativeLibrary.TryLoad(name, out handle)) { path = name; break; }
            tried.Add(name);
        }
        if (path is null)
            throw new DllNotFoundException($"Open MPI's library was not found (tried {string.Join(", ", tried)}); install openmpi-bin and "
                + "libopenmpi-dev (apt) or run .ci/setup");
        Handle = handle;
        Path = path;
        MPI_Init_thread = (delegate* unmanaged<int*, byte***, int, int*, int>)Require("MPI_Init_thread");
        MPI_Initialized = (delegate* unmanaged<int*, int>)Require("MPI_Initialized");
        MPI_Finalized = (delegate* unmanaged<int*, int>)Require("MPI_Finalized");
        MPI_Finalize = (delegate* unmanaged<int>)Require("MPI_Finalize");
        MPI_Abort = (delegate* unmanaged<nint, int, int>)Require("MPI_Abort");
        MPI_Comm_rank = (delegate* unmanaged<nint, int*, int>)Require("MPI_Comm_rank");
        MPI_Comm_size = (delegate* unmanaged<nint, int*, int>)Require("MPI_Comm_size");
        MPI_Barrier = (delegate* unmanaged<nint, int>)Require("MPI_Barrier");
        MPI_Ibarrier = (delegate* unmanaged<nint, nint*, int>)Require("MPI_Ibarrier");
        MPI_Allreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, int>)Require("MPI_Allreduce");
        MPI_Iallreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int>)Require("MPI_Iallreduce");
        MPI_Bcast = (delegate* unmanaged<void*, int, nint, int, nint, int>)Require("MPI_Bcast");
        MPI_Ibcast = (delegate* unmanaged<void*, int, nint, int, nint, nint*, int>)Require("MPI_Ibcast");
        MPI_Igather = (delegate* unmanaged<void*, int, nint, void*, int, nint, int, nint, nint*, int>)Require("MPI_Igather");
        MPI_Test = (delegate* unmanaged<nint*, int*, void*, int>)Require("MPI_Test");
        MPI_Wait = (delegate* unmanaged<nint*, void*, int>)Require("MPI_Wait");
        MPI_Error_string = (delegate* unmanaged<int, byte*, int*, int>)Require("MPI_Error_string");
        MPI_Get_library_version = (delegate* unmanaged<byte*, int*, int>)Require("MPI_Get_library_version");
        CommWorld = Global("ompi_mpi_comm_world");
        Float = Global("ompi_mpi_float");
        Double = Global("ompi_mpi_double");
        Byte = Global("ompi_mpi_byte");
        Sum = Global("ompi_mpi_op_sum");
        Max = Global("ompi_mpi_op_max");
    }

    /// <summary>The process-wide binding; throws <see cref="DllNotFoundException"/> naming what to install when
    /// absent.</summary>
    public static MpiLibrary Api => Shared.Value;

    /// <summary>True when the library loads (nothing else is done).</summary>
    public static bool TryLoad(out string why)
    {
        try
        {
            _ = Shared.Value;
            why = "";
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            why = e.Message;
            return false;
        }
    }

    /// <summary>The OS handle.</summary>
    public nint Handle { get; }

    /// <summary>The name that loaded.</summary>
    public string Path { get; }

    /// <summary>MPI_COMM_WORLD.</summary>
    public nint CommWorld { get; }

    /// <summary>MPI_FLOAT.</summary>
    public nint Float { get; }

    /// <summary>MPI_DOUBLE.</summary>
    public nint Double { get; }

    /// <summary>MPI_BYTE.</summary>
    public nint Byte { get; }

    /// <summary>MPI_SUM.</summary>
    public nint Sum { get; }

    /// <summary>MPI_MAX.</summary>
    public nint Max { get; }

    /// <summary>"MPI_X failed: text (code N)" for a non-zero return code.</summary>
    public string Describe(string function, int code)
    {
        var text = stackalloc byte[512]; // MPI_MAX_ERROR_STRING is 256 in Open MPI
        int length = 0;
        string message = MPI_Error_string(code, text, &length) == Success ? Marshal.PtrToStringUTF8((nint)text, length) : "unknown error";
        return $"{function} failed: {message} (code {code})";
    }

    /// <summary>Throws <see cref="MpiException"/> when <paramref name="code"/> is not MPI_SUCCESS.</summary>
    public void Check(string function, int code)
    {
        if (code != Success) throw new MpiException(Describe(function, code));
    }

    /// <summary>The library's version string (MPI_Get_library_version; callable before MPI_Init).</summary>
    public string Version()
    {
        var text = stackalloc byte[8192]; // MPI_MAX_LIBRARY_VERSION_STRING
        int length = 0;
        Check("MPI_Get_library_version", MPI_Get_library_version(text, &length));
        string s = Marshal.PtrToStringUTF8((nint)text, length).Trim('\0', ' ', '\n');
        int comma = s.IndexOf(',', StringComparison.Ordinal);
        return comma > 0 ? s[..comma] : s;
    }

    private nint Require(string symbol) => NativeLibrary.TryGetExport(Handle, symbol, out nint address) ? address
        : throw new EntryPointNotFoundException($"MPI library '{Path}' has no export '{symbol}' (not Open MPI 4.x or newer?)");

    private nint Global(string symbol) => NativeLibrary.TryGetExport(Handle, symbol, out nint address) ? address
        : throw new EntryPointNotFoundException($"MPI library '{Path}' has no global '{symbol}': only Open MPI is supported "
            + "(its handles are addresses of these globals; MPICH-family libraries use integer handles)");
}

/// <summary>An MPI call failed, or the ranks disagree.</summary>
internal sealed class MpiException : Exception
{
    /// <summary>Creates the exception.</summary>
    public MpiException() { }

    /// <summary>Creates the exception with a message.</summary>
    public MpiException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public MpiException(string message, Exception inner) : base(message, inner) { }
}
