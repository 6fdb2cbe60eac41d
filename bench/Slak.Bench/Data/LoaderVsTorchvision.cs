// loader-vs-torchvision: images/s of the full image-folder training transform (decode, RandomResizedCrop bicubic,
// flip, RandAugment rand-m9-mstd0.5-inc1, normalisation, random erasing 0.25) through our BatchLoader with W worker
// threads, against torchvision's DataLoader doing RandomResizedCrop + flip + RandAugment(2, 9) + ToTensor +
// Normalize + RandomErasing with W worker processes (bench/torch/loader_peer.py), on the same folder, side by side in
// one run. Target (issue 21): >= 1.5x torchvision per core.
//   dotnet run -c Release --project bench/Slak.Bench -- loader-vs-torchvision <image folder> [--workers W]
//       [--size 224] [--batch-size 64] [--images 2048] [--ours-only] [--stages]
//   --stages: one thread's time per stage of the transform, no loader, no peer; --ours-only: no peer.
using System.Diagnostics;
using System.Globalization;
using Slak.Data;
using Slak.IO;

namespace Slak.Bench.Data;

internal static class LoaderVsTorchvision
{
    [BenchProgram("loader-vs-torchvision", "image-folder training transform images/s: our loader vs torchvision's DataLoader, same workers")]
    private static int Run(string[] args)
    {
        if (args.Length == 0 || args[0].StartsWith("--", StringComparison.Ordinal))
        {
            Console.Error.WriteLine("usage: loader-vs-torchvision <image folder with train/> [--workers W] [--size 224] [--batch-size 64] [--images 2048]");
            return 2;
        }
        string root = args[0];
        int Arg(string name, int fallback)
        {
            int i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
        }
        int workers = Arg("--workers", Math.Max(1, Environment.ProcessorCount / 2));
        int size = Arg("--size", 224), batch = Arg("--batch-size", 64), images = Arg("--images", 2048);

        var index = ImageFolderScanner.Scan(root);
        if (index.Problems.Count > 0) Console.Error.WriteLine(index.Report());
        var training = new TrainTransformOptions { Size = size, RandAugment = RandAugment.Parse("rand-m9-mstd0.5-inc1") };
        if (Array.IndexOf(args, "--stages") >= 0) return Stages(index, training, images);
        var data = new ImageFolderDataset(index.Train, index.Classes.Count, size, training: training);
        // The batches go to a pool as the trainer's do on the CPU, and each is disposed once consumed.
        using var pool = BatchHostMemory.Native(2 * workers + 1, (long)batch * 3 * size * size);
        var options = new BatchLoaderOptions
        {
            BatchSize = batch, Workers = workers, Prefetch = 2 * workers, Seed = 1, HostMemory = pool,
            Augment = new AugmentOptions { CropPadding = 0, HorizontalFlip = false, EraseProbability = 0.25, SourceAugmentation = true }
                .WithNormalization(DataNormalization.Imagenet),
        };
        int seen = 0, epoch = 0;
        var clock = new Stopwatch();
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        int gen2 = GC.CollectionCount(2), gen0 = GC.CollectionCount(0);
        bool warm = false;
        while (seen < images)
        {
            foreach (var b in new BatchLoader(data, options, epoch++))
            {
                b.Dispose();
                if (!warm) { warm = true; clock.Start(); continue; }
                seen += b.Count;
                if (seen >= images) break;
            }
        }
        double ours = seen / clock.Elapsed.TotalSeconds;
        double cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ours:        {seen} images in {clock.Elapsed.TotalSeconds:F2} s = {ours:F1} images/s ({ours / workers:F1} per worker thread)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"             process CPU {cpu:F2} s ({1e3 * cpu / seen:F2} ms per image), GCs gen0 {GC.CollectionCount(0) - gen0}, gen2 {GC.CollectionCount(2) - gen2}"));
        if (Array.IndexOf(args, "--ours-only") >= 0) return 0;

        string script = FindScript();
        var psi = new ProcessStartInfo("/usr/bin/python3",
            $"\"{script}\" \"{root}\" --size {size} --workers {workers} --batch-size {batch} --images {images}")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            Console.Error.WriteLine($"torchvision peer failed (exit {p.ExitCode}): {stderr.Result}");
            return 1;
        }
        double theirs = double.Parse(stdout.Split(' ')[2], CultureInfo.InvariantCulture);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"torchvision: {stdout.Split(' ')[0]} images in {stdout.Split(' ')[1]} s = {theirs:F1} images/s ({theirs / workers:F1} per worker process)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ratio ours/torchvision at {workers} workers: {ours / theirs:F2}x (target >= 1.5x); {size}x{size}, batch {batch}, {Environment.ProcessorCount} logical CPUs, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC"));
        // Per core, conservatively: our images per second of our whole process's CPU time (workers, consumer and GC
        // threads) against torchvision's images per second of wall time per worker process (each worker is busy the
        // whole time, so its CPU time is at least that; its main process's CPU is not counted in its favour).
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"per core: ours {seen / cpu:F1} images per CPU second (whole process), torchvision {theirs / workers:F1} per worker-process second: {seen / cpu / (theirs / workers):F2}x"));
        return 0;
    }

    /// <summary>`--stages`: where one thread's time goes, stage by stage of the transform (no peer, no
    /// loader).</summary>
    private static int Stages(ImageFolderIndex index, TrainTransformOptions o, int images)
    {
        var names = new[] { "decode", "RandomResizedCrop", "flip", "RandAugment", "ToTensor+Normalize", "erase" };
        var seconds = new double[names.Length];
        var clock = new Stopwatch();
        var rng = new SlakRandom(1);
        var dst = new float[3 * o.Size * o.Size];
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        void Time(int stage, Action a)
        {
            clock.Restart();
            a();
            seconds[stage] += clock.Elapsed.TotalSeconds;
        }
        for (int i = 0; i < images; i++)
        {
            DecodedImage img = null!;
            Time(0, () => img = ImageDecoder.DecodeFile(index.Train[i % index.Train.Count].Path));
            Time(1, () =>
            {
                var (top, left, h, w) = TrainTransform.RandomResizedCropBox(img.Width, img.Height, rng, o.Scale, o.Ratio);
                img = TrainTransform.ResizedCrop(img, top, left, h, w, o.Size);
            });
            Time(2, () => { if (rng.NextDouble() < o.FlipProbability) img = PilOps.FlipHorizontal(img); });
            Time(3, () => img = o.RandAugment!.Apply(img, rng, o.Fill));
            Time(4, () => TrainTransform.Normalize(img, o.Mean, o.Std, dst));
            Time(5, () =>
            {
                if (TrainTransform.EraseBox(o.Size, o.Size, o.EraseProbability, rng) is { } box)
                {
                    var noise = new float[3 * box.Height * box.Width];
                    for (int k = 0; k < noise.Length; k++) noise[k] = (float)rng.NextNormal();
                    TrainTransform.Erase(dst, 3, o.Size, o.Size, box, noise);
                }
            });
        }
        double total = seconds.Sum();
        double cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"process CPU {1e3 * cpu / images:F2} ms per image, GCs gen0 {GC.CollectionCount(0)}, gen2 {GC.CollectionCount(2)}"));
        for (int s = 0; s < names.Length; s++)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{names[s],-20} {1e3 * seconds[s] / images,7:F3} ms/image  {100 * seconds[s] / total,5:F1} %"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{"total",-20} {1e3 * total / images,7:F3} ms/image ({images} images, one thread)"));
        return 0;
    }

    private static string FindScript()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string path = Path.Combine(dir.FullName, "bench", "torch", "loader_peer.py");
            if (File.Exists(path)) return path;
        }
        throw new FileNotFoundException("bench/torch/loader_peer.py not found above " + AppContext.BaseDirectory);
    }
}
