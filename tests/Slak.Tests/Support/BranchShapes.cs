// The decomposed depthwise tests' branch lists, written as in test cases: "51x5,5x51,5x5".
using System.Globalization;

namespace Slak.Tests.Support;

internal static class BranchShapes
{
    /// <summary>"KhxKw,KhxKw,..." as (Kh, Kw) pairs in order.</summary>
    public static (int Kh, int Kw)[] Parse(string list) =>
        [.. list.Split(',').Select(s => s.Split('x'))
            .Select(p => (int.Parse(p[0], CultureInfo.InvariantCulture), int.Parse(p[1], CultureInfo.InvariantCulture)))];
}
