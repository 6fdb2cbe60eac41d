// Files written by the C# writers, read by numpy (np.load for .npy; a few lines of json + numpy for safetensors,
// following the format description), when /usr/bin/python3 with numpy is installed (Debian's python3-numpy, which
// .ci/setup installs); skipped with the reason otherwise.
using System.Diagnostics;
using System.Globalization;
using NUnit.Framework;
using Slak.IO;

namespace Slak.Tests.IO;

[TestFixture]
public sealed class PythonCrossCheckTests : ScratchFolderFixture
{
    private const string Python = "/usr/bin/python3";

    // Prints one line per array: name, dtype, shape, and the sum of float64(values) with repr precision.
    private const string Script = """
        import json, struct, sys
        import numpy as np
        for path in sys.argv[1:]:
            if path.endswith('.npy'):
                a = np.load(path, allow_pickle=False)
                assert a.flags.c_contiguous
                print(path.rsplit('/', 1)[-1], a.dtype.str, list(a.shape), repr(float(a.astype(np.float64).sum())))
            else:
                raw = open(path, 'rb').read()
                n = struct.unpack('<Q', raw[:8])[0]
                header = json.loads(raw[8:8 + n].decode('utf-8'))
                data = raw[8 + n:]
                kinds = {'F32': '<f4', 'F64': '<f8', 'I64': '<i8', 'U8': 'u1'}
                print('__metadata__', json.dumps(header.pop('__metadata__', {}), sort_keys=True))
                for name, info in header.items():
                    b, e = info['data_offsets']
                    a = np.frombuffer(data[b:e], dtype=kinds[info['dtype']]).reshape(info['shape'])
                    print(name, info['dtype'], list(a.shape), repr(float(a.astype(np.float64).sum())))
        """;

    private static string[] RunPython(params string[] files)
    {
        if (!File.Exists(Python)) Assert.Ignore($"{Python} not installed (apt-get install python3-numpy)");
        var info = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(Script);
        foreach (string f in files) info.ArgumentList.Add(f);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        string stderr = process.StandardError.ReadToEnd();
        if (!process.WaitForExit(120_000))
        {
            process.Kill();
            Assert.Fail("python3 did not finish within 120 s");
        }
        if (process.ExitCode != 0 && stderr.Contains("No module named 'numpy'", StringComparison.Ordinal))
            Assert.Ignore("numpy is not installed for /usr/bin/python3 (apt-get install python3-numpy)");
        Assert.That(process.ExitCode, Is.EqualTo(0), "python3 failed: " + stderr);
        return stdout.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    private static string Sum(IEnumerable<double> values) =>
        values.Sum().ToString("R", CultureInfo.InvariantCulture);

    [Test]
    public void NumpyReadsOurNpyAndSafetensorsFiles()
    {
        int seed = IoTestData.NewSeed();
        var rng = new Random(seed);
        // Sums of small integers are exact in float64 in any order, so the totals compare exactly.
        float[] f = Enumerable.Range(0, 2 * 3 * 5).Select(_ => (float)rng.Next(-1000, 1000)).ToArray();
        double[] d = Enumerable.Range(0, 7).Select(_ => (double)rng.Next(-1000, 1000)).ToArray();
        long[] l = Enumerable.Range(0, 4).Select(_ => (long)rng.Next(-1000, 1000)).ToArray();
        byte[] m = Enumerable.Range(0, 6).Select(_ => (byte)rng.Next(0, 2)).ToArray();
        string pf = Path.Combine(Folder, "f.npy"), pd = Path.Combine(Folder, "d.npy");
        string pl = Path.Combine(Folder, "l.npy"), ps = Path.Combine(Folder, "w.safetensors");
        Npy.Write(pf, f, [2, 3, 5]);
        Npy.Write(pd, d, [7]);
        Npy.Write(pl, l, [4]);
        new SafeTensorsWriter().SetMetadata("format", "pt").SetMetadata("note", "é+ü")
            .AddFloat32("stages.0.0.gamma", f, [30]).AddInt64("bn.num_batches_tracked", [5], [])
            .AddUInt8("mask.head.weight", m, [2, 3]).AddRaw("d", SafeTensorsDType.F64,
                System.Runtime.InteropServices.MemoryMarshal.AsBytes(d.AsSpan()), [7, 1])
            .Write(ps);

        string[] lines = RunPython(pf, pd, pl, ps);
        string msg = $"seed {seed}; python said:\n{string.Join('\n', lines)}";
        Assert.That(lines, Is.EqualTo(new[]
        {
            $"f.npy <f4 [2, 3, 5] {Sum(f.Select(x => (double)x))}",
            $"d.npy <f8 [7] {Sum(d)}",
            $"l.npy <i8 [4] {Sum(l.Select(x => (double)x))}",
            "__metadata__ {\"format\": \"pt\", \"note\": \"\\u00e9+\\u00fc\"}",
            $"stages.0.0.gamma F32 [30] {Sum(f.Select(x => (double)x))}",
            "bn.num_batches_tracked I64 [] 5.0",
            $"mask.head.weight U8 [2, 3] {Sum(m.Select(x => (double)x))}",
            $"d F64 [7, 1] {Sum(d)}",
        }).Using<string>((a, b) => string.CompareOrdinal(Normalize(a), Normalize(b))), msg);
    }

    // Python prints integral floats as "12.0"; .NET's "R" prints "12".
    private static string Normalize(string line)
    {
        int space = line.LastIndexOf(' ');
        string last = line[(space + 1)..];
        return double.TryParse(last, NumberStyles.Float, CultureInfo.InvariantCulture, out double v)
            ? line[..(space + 1)] + v.ToString("R", CultureInfo.InvariantCulture)
            : line;
    }
}
