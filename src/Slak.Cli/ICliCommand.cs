// Each verb of `slak` lives in its own file under Commands/ and implements this interface; Program discovers them,
// so adding a verb never touches a shared file.
using System.CommandLine;

namespace Slak.Cli;

/// <summary>A verb of the <c>slak</c> command.</summary>
internal interface ICliCommand
{
    /// <summary>Position in --help (lower first).</summary>
    int Order { get; }

    /// <summary>Builds the System.CommandLine command with its options and action (returning the exit code).</summary>
    Command Build();
}
