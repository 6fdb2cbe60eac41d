// The start of a resumed `slak train`: the run folder's saved options are the base that explicitly given options are
// checked against (Slak.Train.ResumeOptions), and whether there is a checkpoint to resume at all.
using Slak.Train;

namespace Slak.Cli.Training;

/// <summary>Helpers of `slak train --resume`.</summary>
internal static class ResumeStart
{
    /// <summary>The options saved in <paramref name="folder"/>'s last checkpoint.</summary>
    public static TrainOptions SavedOptions(string? folder, string? optionsFile)
    {
        if (folder is null) throw new ArgumentException("--resume needs --out <run folder>", "--resume");
        if (optionsFile is not null)
            throw new ArgumentException("--options cannot be combined with --resume (the run keeps its saved options)", "--options");
        return Trainer.ReadCheckpointOptions(folder);
    }

    /// <summary>True when <paramref name="folder"/> holds a checkpoint that --resume can continue.</summary>
    public static bool HasCheckpoint(string folder)
    {
        try
        {
            Trainer.FindLastCheckpoint(folder);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }
}
