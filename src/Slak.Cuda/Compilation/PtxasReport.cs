// Parses the ptxas verbose report found in an NVRTC log, e.g.
//   ptxas info    : Compiling entry function 'add_kernel' for 'sm_80'
//   ptxas info    : Function properties for add_kernel
//   ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
//   ptxas info    : Used 10 registers, 512 bytes smem, 372 bytes cmem[0]
// Properties of non-entry (noinline device) functions are not attributed to any kernel.
using System.Globalization;
using System.Text.RegularExpressions;

namespace Slak.Cuda.Compilation;

/// <summary>Parser for the ptxas resource report.</summary>
internal static partial class PtxasReport
{
    /// <summary>Every kernel entry described in <paramref name="log"/>, in order. Lines that do not belong to the
    /// report are ignored; an entry without a "Used N registers" line is reported with zero registers.</summary>
    public static IReadOnlyList<KernelResources> Parse(string log)
    {
        ArgumentNullException.ThrowIfNull(log);
        var result = new List<KernelResources>();
        KernelResources? current = null;
        string? propertiesOf = null;
        foreach (string raw in log.Split('\n'))
        {
            string line = raw.TrimEnd('\r', '\0');
            if (EntryLine().Match(line) is { Success: true } entry)
            {
                Flush();
                current = new KernelResources(entry.Groups[1].Value, entry.Groups[2].Value, 0, 0, 0, 0, 0, 0);
                propertiesOf = null;
            }
            else if (PropertiesLine().Match(line) is { Success: true } props)
            {
                propertiesOf = props.Groups[1].Value;
            }
            else if (StackLine().Match(line) is { Success: true } stack)
            {
                if (current is not null && propertiesOf == current.Kernel)
                {
                    current = current with
                    {
                        StackFrameBytes = Int(stack.Groups[1]),
                        SpillStoreBytes = Int(stack.Groups[2]),
                        SpillLoadBytes = Int(stack.Groups[3]),
                    };
                }
            }
            else if (UsedLine().Match(line) is { Success: true } used && current is not null)
            {
                Match smem = SharedPart().Match(line);
                Match cmem = ConstantPart().Match(line);
                current = current with
                {
                    Registers = Int(used.Groups[1]),
                    SharedBytes = smem.Success ? Int(smem.Groups[1]) : 0,
                    ConstantBytes = cmem.Success ? Int(cmem.Groups[1]) : 0,
                };
            }
        }

        Flush();
        return result;

        void Flush()
        {
            if (current is not null)
            {
                result.Add(current);
                current = null;
            }
        }
    }

    private static int Int(Group g) => int.Parse(g.Value, NumberStyles.None, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"Compiling entry function '([^']+)' for '([^']+)'")]
    private static partial Regex EntryLine();

    [GeneratedRegex(@"Function properties for (\S+)")]
    private static partial Regex PropertiesLine();

    [GeneratedRegex(@"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")]
    private static partial Regex StackLine();

    [GeneratedRegex(@"ptxas\s+info\s*:\s*Used (\d+) registers")]
    private static partial Regex UsedLine();

    [GeneratedRegex(@"(\d+) bytes smem")]
    private static partial Regex SharedPart();

    [GeneratedRegex(@"(\d+) bytes cmem\[0\]")]
    private static partial Regex ConstantPart();
}
