// How much `slak train` prints: --quiet, the default, or --verbose.
namespace Slak.Cli.Training;

/// <summary>The amount of output of a training command.</summary>
internal enum Verbosity
{
    /// <summary>Only warnings, errors and the final result line.</summary>
    Quiet,

    /// <summary>The run's log: start, density tables at the start and the end, one line per prune/regrow round,
    /// progress and epoch summaries.</summary>
    Normal,

    /// <summary>Normal, plus the full density table after every prune/regrow round.</summary>
    Verbose,
}
