// The kernel sources must compile unchanged where a newer CUDA's cuda_bf16.h is on the include path (NVRTC 12
// includes it when a source asks for it, and CUDA's own headers may pull it in): none of them may use, define or
// declare a name that cuda_bf16.h defines. The list below is the public API of cuda_bf16.h as NVIDIA's CUDA Math
// API documentation lists it (types, conversions, arithmetic and comparison intrinsics, the header's guard and
// feature macros), plus the reserved prefixes (__nv_bfloat16*, __float2bfloat16*, __bfloat162*, __bfloat1622*). Every
// identifier of the device sources that mentions bf16 / bfloat16 must be ours (prefixed slak_ or dw_, or SLAK_).
// This is a static check: no newer NVRTC is available here to compile against the real header.
using System.Text.RegularExpressions;
using NUnit.Framework;
using Slak.Tests.Cuda;

namespace Slak.Tests.Precision;

public sealed partial class Bf16NameClashTests
{
    private static readonly string[] HeaderNames =
    [
        "__nv_bfloat16", "__nv_bfloat162", "__nv_bfloat16_raw", "__nv_bfloat162_raw", "nv_bfloat16", "nv_bfloat162",
        "__float2bfloat16", "__float2bfloat16_rn", "__float2bfloat16_rz", "__float2bfloat16_rd", "__float2bfloat16_ru",
        "__bfloat162float", "__float22bfloat162_rn", "__bfloat1622float2", "__floats2bfloat162_rn", "__float2bfloat162_rn",
        "__bfloat162bfloat162", "__low2bfloat16", "__high2bfloat16", "__low2float", "__high2float", "__halves2bfloat162",
        "__short_as_bfloat16", "__bfloat16_as_short", "__ushort_as_bfloat16", "__bfloat16_as_ushort",
        "__int2bfloat16_rn", "__bfloat162int_rn", "__uint2bfloat16_rn", "__bfloat162uint_rn", "__double2bfloat16",
        "__hadd", "__hsub", "__hmul", "__hdiv", "__hfma", "__hneg", "__habs", "__hmax", "__hmin", "__heq", "__hne",
        "__hlt", "__hle", "__hgt", "__hge", "__hisnan", "__hisinf", "__hadd2", "__hmul2", "__hfma2", "hsqrt", "hexp",
        "hlog", "hrcp", "hrsqrt", "htrunc", "hceil", "hfloor", "hrint", "__ldg", "__ldcg", "__ldca", "__ldcs", "__ldlu",
        "__ldcv", "__stwb", "__stcg", "__stcs", "__stwt", "__shfl_sync", "__shfl_xor_sync", "atomicAdd",
        "__CUDA_BF16_H__", "__CUDA_BF16_HPP__", "__CUDA_BF16_TYPES_EXIST__", "CUDA_BF16_H", "__CUDA_NO_BFLOAT16_CONVERSIONS__",
    ];

    [GeneratedRegex(@"\b(?:#\s*define\s+|struct\s+|class\s+|typedef\s+[^;]*?\s|using\s+)([A-Za-z_][A-Za-z0-9_]*)")]
    private static partial Regex Definition();

    [GeneratedRegex(@"\b[A-Za-z_][A-Za-z0-9_]*\b")]
    private static partial Regex Token();

    [GeneratedRegex(@"//[^\n]*|/\*.*?\*/", RegexOptions.Singleline)]
    private static partial Regex Comment();

    [Test]
    public void DeviceSourcesDefineNoNameOfCudaBf16H()
    {
        string root = NvrtcTestSupport.RepositoryRoot() ?? throw new IgnoreException("repository root not found");
        var files = new[] { "kernels", "common", "include" }
            .SelectMany(d => Directory.EnumerateFiles(Path.Combine(root, "cuda", d), "*", SearchOption.AllDirectories))
            .Where(f => f.EndsWith(".cu", StringComparison.Ordinal) || f.EndsWith(".cuh", StringComparison.Ordinal) ||
                        f.EndsWith(".h", StringComparison.Ordinal))
            .ToList();
        Assert.That(files.Select(Path.GetFileName), Does.Contain("slak_bf16.cuh").And.Contain("dwconv_fused.cu"));
        // Functions defined by user code that cuda_bf16.h also declares (builtins we only call, such as __ldg or
        // __shfl_xor_sync, are fine: the header declares them for bf16 overloads, and calls with float resolve
        // as before).
        string[] definedByUs = [.. HeaderNames.Where(n => !n.StartsWith("__ld", StringComparison.Ordinal) &&
                                                           !n.StartsWith("__st", StringComparison.Ordinal) &&
                                                           !n.StartsWith("__shfl", StringComparison.Ordinal) &&
                                                           n != "atomicAdd")];
        var problems = new List<string>();
        foreach (string file in files)
        {
            string text = Comment().Replace(File.ReadAllText(file), " ");
            string name = Path.GetRelativePath(root, file);
            foreach (Match m in Definition().Matches(text))
            {
                string id = m.Groups[1].Value;
                if (HeaderNames.Contains(id) || IsReserved(id)) problems.Add($"{name} defines {id}");
                if (Mentions16Bit(id) && !IsOurs(id)) problems.Add($"{name} defines {id}, a bf16 name without our prefix");
            }
            var tokens = Token().Matches(text).Select(t => t.Value).ToHashSet(StringComparer.Ordinal);
            foreach (string id in tokens)
            {
                if (definedByUs.Contains(id) || IsReserved(id)) problems.Add($"{name} uses {id} (a cuda_bf16.h name)");
            }
        }
        Assert.That(problems, Is.Empty, "the kernel sources must not clash with cuda_bf16.h");
    }

    private static bool IsReserved(string id) =>
        id.StartsWith("__nv_bfloat16", StringComparison.Ordinal) || id.StartsWith("__float2bfloat16", StringComparison.Ordinal) ||
        id.StartsWith("__bfloat162", StringComparison.Ordinal) || id.StartsWith("__bfloat1622", StringComparison.Ordinal) ||
        id.StartsWith("nv_bfloat16", StringComparison.Ordinal);

    private static bool Mentions16Bit(string id) =>
        id.Contains("bf16", StringComparison.OrdinalIgnoreCase) || id.Contains("bfloat16", StringComparison.OrdinalIgnoreCase);

    private static bool IsOurs(string id) =>
        id.StartsWith("slak_", StringComparison.Ordinal) || id.StartsWith("SLAK_", StringComparison.Ordinal) ||
        id.StartsWith("dw_", StringComparison.Ordinal) || id.EndsWith("_kernel", StringComparison.Ordinal);
}
