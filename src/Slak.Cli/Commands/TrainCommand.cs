// `slak train`: trains a preset on Fashion-MNIST (default: slak_nano, sparse, on the best device) with progress
// output, checkpoints, metrics.jsonl and plot.png in the run folder, and prints the test accuracy at the end.
// Parsing and presentation only: the options become a TrainOptions record and the work is Slak.Train.Trainer.
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Slak.Backends.Cpu;
using Slak.Cli.Training;
using Slak.Models;
using Slak.Sparse;
using Slak.Train;

namespace Slak.Cli.Commands;

/// <summary>The train verb.</summary>
internal sealed class TrainCommand : ICliCommand
{
    /// <inheritdoc />
    public int Order => 10;

    private static readonly TrainOptions Defaults = new();

    /// <inheritdoc />
    public Command Build()
    {
        var preset = new Option<string>("--preset") { Description = $"model preset ({string.Join(", ", ModelPresets.Names)})", DefaultValueFactory = _ => Defaults.Preset };
        var epochs = new Option<int>("--epochs") { Description = "training epochs", DefaultValueFactory = _ => Defaults.Epochs };
        var batch = new Option<int>("--batch-size") { Description = "images per micro-batch", DefaultValueFactory = _ => Defaults.BatchSize };
        var lr = new Option<double>("--lr") { Description = "peak learning rate (AdamW)", DefaultValueFactory = _ => Defaults.Lr };
        var minLr = new Option<double>("--min-lr") { Description = "learning rate at the end of the cosine", DefaultValueFactory = _ => Defaults.MinLr };
        var warmup = new Option<double>("--warmup-epochs") { Description = "linear warmup length in epochs", DefaultValueFactory = _ => Defaults.WarmupEpochs };
        var wd = new Option<double>("--weight-decay") { Description = "AdamW weight decay (2-D/4-D weights only)", DefaultValueFactory = _ => Defaults.WeightDecay };
        var sparse = new Option<bool>("--sparse") { Description = "sparse training (default: on when the preset is meant to be sparse)" };
        var noSparse = new Option<bool>("--no-sparse") { Description = "dense training" };
        var density = new Option<double>("--density") { Description = "global density of the masked weights (default: the preset's, 0.6 for slak_nano)", DefaultValueFactory = _ => Defaults.Density };
        var init = new Option<string>("--sparse-init") { Description = "initial layer densities: snip, erk or uniform", DefaultValueFactory = _ => "snip" };
        init.AcceptOnlyFromAmong("snip", "erk", "uniform");
        var pruneRate = new Option<double>("--prune-rate") { Description = "initial prune/regrow rate (cosine-decayed to 0.005)", DefaultValueFactory = _ => Defaults.PruneRate };
        var updateFrequency = new Option<int>("--update-frequency") { Description = "optimizer steps between prune/regrow rounds (0: fixed masks)", DefaultValueFactory = _ => Defaults.UpdateFrequency };
        var growth = new Option<string>("--growth") { Description = "regrowth: random or gradient", DefaultValueFactory = _ => "random" };
        growth.AcceptOnlyFromAmong("random", "gradient");
        var semantics = new Option<string>("--sparse-semantics") { Description = "ours (masked gradients and moments) or reference", DefaultValueFactory = _ => "ours" };
        semantics.AcceptOnlyFromAmong("ours", "reference");
        var dropPath = new Option<double>("--drop-path") { Description = "stochastic depth rate (linear over blocks)", DefaultValueFactory = _ => Defaults.DropPath };
        var smoothing = new Option<double>("--smoothing") { Description = "label smoothing", DefaultValueFactory = _ => Defaults.Smoothing };
        var mixup = new Option<double>("--mixup") { Description = "mixup alpha (0: off)", DefaultValueFactory = _ => Defaults.Mixup };
        var cutmix = new Option<double>("--cutmix") { Description = "CutMix alpha (0: off)", DefaultValueFactory = _ => Defaults.Cutmix };
        var ema = new Option<double>("--ema") { Description = "weight EMA decay (0: off), e.g. 0.999", DefaultValueFactory = _ => Defaults.Ema };
        var clip = new Option<double>("--clip-grad") { Description = "clip gradients to this global norm (0: off)", DefaultValueFactory = _ => Defaults.ClipGrad };
        var accum = new Option<int>("--accum-steps") { Description = "micro-batches per optimizer step", DefaultValueFactory = _ => Defaults.AccumSteps };
        var seed = new Option<ulong>("--seed") { Description = "seed of every random choice", DefaultValueFactory = _ => Defaults.Seed };
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda, cuda:N or cuda-emu", DefaultValueFactory = _ => Defaults.Device };
        var precision = PrecisionChoice.CreateOption();
        var limit = new Option<int>("--limit") { Description = "use only the first N training images, after the validation hold-out (0: all)", DefaultValueFactory = _ => 0 };
        var valSplit = new Option<double>("--val-split") { Description = "fraction of each class held out of the training set for validation (best/ is selected on it) when the data has no val/ split; fixed split seed", DefaultValueFactory = _ => Defaults.ValSplit };
        var testEvery = new Option<bool>("--eval-test-every-epoch") { Description = "also score the test set after every epoch (reported only; by default it is scored once, after the last epoch)" };
        var logEvery = new Option<int>("--log-every") { Description = "plain progress line every N steps when not on a terminal", DefaultValueFactory = _ => Defaults.LogEvery };
        var outDir = new Option<string?>("--out") { Description = "run folder (default: runs/<preset>-<time>)" };
        var resume = new Option<bool>("--resume") { Description = "continue the run in --out from its last checkpoint (with its saved options; --epochs may be raised)" };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace the run already in --out (without it, an existing run is refused)" };
        var data = new Option<string?>("--data") { Description = $"an image folder (train/<class>/<images>, optional val/ and test/), a Fashion-MNIST folder (default: {Slak.IO.FashionMnist.DefaultFolder}), or an .npz with images (N, C, H, W) float32 and labels (N) int64, used as they are" };
        var modelConfig = new Option<string?>("--model-config") { Description = "train the model of this config.json (as slak infer takes it) instead of a preset" };
        var initWeights = new Option<string?>("--init-weights") { Description = "start from these weights (.safetensors, reference names; mask.<name> entries: train with exactly those masks)" };
        var noShuffle = new Option<bool>("--no-shuffle") { Description = "take the batches in file order" };
        var warmupSteps = new Option<int?>("--warmup-steps") { Description = "warmup length in optimizer steps (replaces --warmup-epochs)" };
        var inputSize = new Option<int>("--input-size") { Description = "image folders: input side (default: the preset's, at most 224)", DefaultValueFactory = _ => Defaults.InputSize };
        var cropPct = new Option<double>("--crop-pct") { Description = "image folders: resize the short side to input-size / crop-pct, then centre crop", DefaultValueFactory = _ => Defaults.CropPct };
        var trainCrop = new Option<string?>("--train-crop") { Description = "image folders' training crop: rrc (RandomResizedCrop, the default) or pad (the evaluation view, then a random crop with 2-pixel zero padding, as Fashion-MNIST trains)" };
        trainCrop.AcceptOnlyFromAmong("rrc", "pad");
        var badImages = new Option<string>("--bad-images") { Description = "image folders: what a start-up scan problem does: error (stop, listing every problem) or skip (leave the files out)", DefaultValueFactory = _ => "error" };
        badImages.AcceptOnlyFromAmong("error", "skip");
        var aa = new Option<string?>("--aa") { Description = $"image folders: timm RandAugment string or none (default {DataSets.DefaultRandAugment})" };
        var reprob = new Option<double?>("--reprob") { Description = $"random-erasing probability (default {DataSets.DefaultReprob} for image folders, 0 for Fashion-MNIST)" };
        var workers = new Option<int>("--workers") { Description = "data-loader threads (decoding, augmentation); results do not depend on it", DefaultValueFactory = _ => Defaults.Workers };
        var maxBad = new Option<double>("--max-bad-fraction") { Description = "stop when more than this fraction of the training images fails to decode in an epoch (fewer are skipped and listed)", DefaultValueFactory = _ => Defaults.MaxBadImageFraction };
        var threads = new Option<int>("--threads") { Description = "CPU threads (default: SLAK_NUM_THREADS or all cores)", DefaultValueFactory = _ => 0 };
        var noSyncBn = new Option<bool>("--no-sync-bn") { Description = "mpirun: BatchNorm statistics of each rank's own batch (default: synchronised over the ranks)" };
        var optionsFile = new Option<string?>("--options") { Description = "JSON file with training options (command-line options given explicitly win)" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "print only warnings, errors and the final result line" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "also print the density table after every prune/regrow round" };

        var cmd = new Command("train", "Train a SLaK preset on Fashion-MNIST (sparse by default) and print the test accuracy");
        foreach (var o in new Option[] { preset, epochs, batch, lr, minLr, warmup, wd, sparse, noSparse, density, init, pruneRate,
                     updateFrequency, growth, semantics, dropPath, smoothing, mixup, cutmix, ema, clip, accum, seed, device, limit,
                     logEvery, outDir, resume, overwrite, data, threads, optionsFile, modelConfig, initWeights, noShuffle, warmupSteps,
                     valSplit, testEvery, inputSize, cropPct, trainCrop, badImages, maxBad, aa, reprob, workers, noSyncBn, quiet, verbose })
            cmd.Options.Add(o);
        cmd.Options.Add(precision);

        cmd.SetAction(parse => DataParallelStart.Run(dp =>
        {
            bool Given(Option o) => parse.GetResult(o) is OptionResult r && !r.Implicit;
            if (parse.GetValue(quiet) && parse.GetValue(verbose))
                throw new ArgumentException("--quiet and --verbose contradict each other", "--quiet");
            using var report = TrainingReporter.ForConsole(parse.GetValue(quiet) ? Verbosity.Quiet
                : parse.GetValue(verbose) ? Verbosity.Verbose : Verbosity.Normal);
            // On --resume the saved options are the base and only what is given explicitly may differ (ResumeOptions).
            TrainOptions? saved = parse.GetValue(resume) ? ResumeStart.SavedOptions(parse.GetValue(outDir), parse.GetValue(optionsFile)) : null;
            var o = saved ?? (parse.GetValue(optionsFile) is string file ? TrainOptions.Load(file) : new TrainOptions());
            T Pick<T>(Option<T> opt, T current) => Given(opt) ? parse.GetValue(opt)! : current;
            o = o with
            {
                Preset = Pick(preset, o.Preset), Epochs = Pick(epochs, o.Epochs), BatchSize = Pick(batch, o.BatchSize),
                Lr = Pick(lr, o.Lr), MinLr = Pick(minLr, o.MinLr), WarmupEpochs = Pick(warmup, o.WarmupEpochs),
                WeightDecay = Pick(wd, o.WeightDecay), Density = Pick(density, o.Density),
                SparseInit = Given(init) ? Enum.Parse<SparseInit>(parse.GetValue(init)!, ignoreCase: true) : o.SparseInit,
                PruneRate = Pick(pruneRate, o.PruneRate), UpdateFrequency = Pick(updateFrequency, o.UpdateFrequency),
                Growth = Given(growth) ? Enum.Parse<SparseGrowth>(parse.GetValue(growth)!, ignoreCase: true) : o.Growth,
                SparseSemantics = Given(semantics) ? Enum.Parse<SparseSemantics>(parse.GetValue(semantics)!, ignoreCase: true) : o.SparseSemantics,
                DropPath = Pick(dropPath, o.DropPath), Smoothing = Pick(smoothing, o.Smoothing), Mixup = Pick(mixup, o.Mixup),
                Cutmix = Pick(cutmix, o.Cutmix), Ema = Pick(ema, o.Ema), ClipGrad = Pick(clip, o.ClipGrad),
                AccumSteps = Pick(accum, o.AccumSteps), Seed = Pick(seed, o.Seed), Device = Pick(device, o.Device),
                Limit = Pick(limit, o.Limit), LogEvery = Pick(logEvery, o.LogEvery),
                ValSplit = Pick(valSplit, o.ValSplit), EvalTestEveryEpoch = Pick(testEvery, o.EvalTestEveryEpoch),
                InputSize = Pick(inputSize, o.InputSize), CropPct = Pick(cropPct, o.CropPct), MaxBadImageFraction = Pick(maxBad, o.MaxBadImageFraction),
                Aa = Pick(aa, o.Aa), Reprob = Pick(reprob, o.Reprob), Workers = Pick(workers, o.Workers), TrainCrop = Pick(trainCrop, o.TrainCrop),
            };
            if (Given(precision)) o = o with { Precision = PrecisionChoice.Parse(parse.GetValue(precision)) };
            if (Given(modelConfig) && Given(preset))
                throw new ArgumentException("--model-config and --preset both name the model; give one", "--model-config");
            o = o with
            {
                ModelConfig = Given(modelConfig) ? parse.GetValue(modelConfig) : o.ModelConfig,
                Shuffle = !Given(noShuffle) && o.Shuffle, WarmupSteps = Given(warmupSteps) ? parse.GetValue(warmupSteps) : o.WarmupSteps,
            };
            var p = ModelPresets.Get(o.Preset);
            bool fromFile = parse.GetValue(optionsFile) is not null;
            if (Given(sparse) && Given(noSparse))
                throw new ArgumentException("--sparse and --no-sparse contradict each other", "--sparse");
            if (Given(noSparse)) o = o with { Sparse = false };
            else if (Given(sparse) || Given(density)) o = o with { Sparse = true };
            else if (!fromFile && saved is null) o = o with { Sparse = p.Density < 1, Density = p.Density < 1 ? p.Density : o.Density };
            if (saved is null)
                o = TrainingInputs.AdjustOptions(o, parse.GetValue(data), parse.GetValue(initWeights),
                    Given(sparse) || Given(density) || fromFile, Given(noSparse));
            int t = parse.GetValue(threads);
            if (t < 0) throw new ArgumentOutOfRangeException("--threads", t, "--threads must be >= 0");
            if (t > 0) CpuParallel.Threads = t;
            string? folder = parse.GetValue(outDir);
            if (saved is not null)
            {
                o = ResumeOptions.Reconcile(saved, o, Console.WriteLine);
                Console.WriteLine($"resuming {folder} with its saved options (preset {o.Preset}, {o.Epochs} epochs)");
            }
            if (dp is not null) o = dp.Configure(o, saved is not null, Given(noSyncBn), t > 0);
            string runName = o.ModelConfig is null ? o.Preset : Path.GetFileNameWithoutExtension(o.ModelConfig);
            folder ??= Path.Combine("runs", $"{runName}-{DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}");
            if (dp is not null) folder = dp.ShareFolder(folder); // rank 0's name (the clocks may straddle a second)
            o.Validate();
            if (!Slak.Data.NpzImages.IsNpz(parse.GetValue(data))) WeightChecks.CheckDataFolder(parse.GetValue(data));
            bool created = !Directory.Exists(folder);
            bool writer = dp?.IsWriter ?? true; // data parallel: rank 0 alone locks and writes the run folder
            using var runLock = writer ? RunLock.Acquire(folder) : null; // one writer per run folder, for the whole run
            try
            {
                if (saved is null && writer) RunFolders.PrepareNewRun(folder, parse.GetValue(overwrite), Console.WriteLine);
                return Train(o, folder, saved is not null, parse.GetValue(data), parse.GetValue(initWeights), parse.GetValue(badImages) == "skip", report, dp);
            }
            catch when (created && writer)
            {
                // A run that failed before writing anything (bad data, bad options) leaves no folder behind.
                runLock?.Dispose();
                if (Directory.Exists(folder) && Directory.EnumerateFileSystemEntries(folder).All(e => Path.GetFileName(e) == ".lock"))
                    Directory.Delete(folder, recursive: true);
                throw;
            }
        }));
        return cmd;
    }

    private static int Train(TrainOptions o, string folder, bool resume, string? dataFolder, string? initWeights, bool skipBadImages,
                             TrainingReporter report, DataParallelStart? dp)
    {
        o.Validate();
        var (device, note) = DeviceChoice.Resolve(o.Device);
        if (note is not null) Console.WriteLine(note);
        if (dp is not null) device = dp.LocalDevice(o.Device, device); // one GPU per rank on a machine
        dp?.ChooseCollective(device); // NCCL on device buffers or MPI on host buffers, agreed by every rank
        var p = ModelPresets.Get(o.Preset);
        if (!resume && DataSets.IsImageFolder(dataFolder))
            // Image folders: the reference augmentation (flip inside the transform) replaces the flip of the small
            // presets; their padded crop stays only with --train-crop pad.
            o = o with
            {
                TrainCrop = o.TrainCrop ?? "rrc", CropPadding = o.TrainCrop == "pad" ? o.CropPadding : 0, HorizontalFlip = false,
                Aa = o.Aa ?? DataSets.DefaultRandAugment, Reprob = o.Reprob ?? DataSets.DefaultReprob,
            };
        else if (!resume && o.Aa is not null and not "none")
            throw new ArgumentException($"--aa {o.Aa}: RandAugment applies to image folders; Fashion-MNIST keeps its own augmentation", "--aa");
        else if (!resume && o.TrainCrop == "rrc")
            throw new ArgumentException("--train-crop rrc: RandomResizedCrop applies to image folders; Fashion-MNIST trains with the padded crop", "--train-crop");
        var inputs = TrainingInputs.Load(o, dataFolder, resume ? null : initWeights, device,
            () => DataSets.Load(dataFolder, p, o.InputSize, o.CropPct, skipBadImages, Console.Error.WriteLine, o.Aa, o.TrainCrop != "pad"));
        var data = inputs.Data;
        Console.WriteLine(o.ModelConfig is null ? $"preset {p.Name}: {data.Description}" : $"model {o.ModelConfig}: {data.Description}");
        if (!resume) o = o with { Normalization = data.Normalization };
        var (train, val, test) = (data.Train, data.Val, data.Test);
        o = PrecisionChoice.ForTraining(o, device, Slak.Data.NpzImages.IsNpz(dataFolder), Console.WriteLine); // recorded in options.json
        dp?.CheckSameEverywhere(o, dataFolder, train, val, test);
        var trainable = SlakTrainable.From(inputs.Model, o.SparseSemantics);
        var trainer = resume ? Trainer.ResumeRank(trainable, train, test, folder, o, val, dp?.Context)
            : val is null ? new Trainer(trainable, train, test, o, folder) { InitialMasks = inputs.Masks, DataParallel = dp?.Context }
            : new Trainer(trainable, train, val, test, o, folder) { InitialMasks = inputs.Masks, DataParallel = dp?.Context };
        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
        Console.CancelKeyPress += onCancel;
        // Printed once Ctrl-C is handled: from this line on, an interrupt ends the run cleanly.
        Console.WriteLine($"run folder: {Path.GetFullPath(folder)}");
        try
        {
            var result = report.Run(trainer, dp is null || dp.IsWriter ? Path.Combine(folder, "plot.png") : null, cts.Token);
            var last = result.Last;
            if (last is not null && test is null)
                report.Result(string.Create(CultureInfo.InvariantCulture,
                    $"no test/ split: no test accuracy; best/ is epoch {trainer.BestEpoch}, validation top-1 {result.BestTop1:F2}%"));
            if (last?.TestTop1 is double top1)
                report.Result(string.Create(CultureInfo.InvariantCulture,
                    $"test accuracy: {top1:F2}% top-1, {last.TestTop5:F2}% top-5 (last epoch's weights; best/ is epoch {trainer.BestEpoch}, selected on validation top-1 {result.BestTop1:F2}%) after {last.Epoch} epochs, {last.WallTime:F0} s, density {last.Density:F3}"));
            else if (last is null && result.Completed)
                report.Result($"trained {trainer.Step} steps: per-step losses in {Path.Combine(folder, Slak.Train.StepLog.FileName)}, weights in {Path.Combine(folder, "last", "model.safetensors")}");
            if (result.Completed) return 0;
            Console.Error.WriteLine($"slak: {result.Message}");
            return 2;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine(ResumeStart.HasCheckpoint(folder)
                ? $"slak: interrupted; continue with: slak train --resume --out {folder}"
                : "slak: interrupted before the first checkpoint; nothing to resume (run the command again to start over)");
            return 130;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }
}
