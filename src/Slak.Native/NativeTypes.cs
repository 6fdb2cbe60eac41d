// The C structs and status codes of include/slak/slak.h, laid out field for field (sequential, natural alignment,
// the same as the C compiler's), so that a slak_*_params* from C can be read directly.
using System.Runtime.InteropServices;

namespace Slak.Native;

/// <summary>slak_status of slak.h.</summary>
internal enum SlakStatus
{
    Success = 0,
    NullPointer = 1,
    InvalidArgument = 2,
    UnsupportedLayout = 3,
    WorkspaceTooSmall = 4,
    ProblemTooLarge = 5,
    LaunchFailed = 6,
    InternalError = 7,
}

/// <summary>slak_dwconv2d_params: sizes (n, c, h, w), strides in elements (N, C, H, W order), kh, kw.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct SingleParams
{
    public long N, C, H, W;
    public fixed long XStride[4];
    public fixed long YStride[4];
    public int Kh, Kw;
}

/// <summary>slak_decomposed_dwconv2d_params: as <see cref="SingleParams"/> with up to three branches.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct DecomposedParams
{
    public const int MaxBranches = 3;

    public long N, C, H, W;
    public fixed long XStride[4];
    public fixed long YStride[4];
    public int NumBranches;
    public fixed int Kh[MaxBranches];
    public fixed int Kw[MaxBranches];
}

/// <summary>A failed validation: the status and slak_last_error()'s message.</summary>
internal sealed class SlakException(SlakStatus status, string message) : Exception(message)
{
    public SlakStatus Status { get; } = status;
}
