// Runs the tests of the framework plug-ins (issue 6) as child processes so that `.ci/run` covers them: the ctest
// smoke test of the C ABI over the host emulator (tests/capi), and the Python tests of the PyTorch operator and the
// checkpoint converter (python/tests, Debian's python3-torch). The C ABI is built with CMake into the emulator's
// build folder that `dotnet build` already configured (src/Slak.Cuda/obj/emu), so only the few C ABI sources compile.
// Skipped with the reason when cmake, python3 or torch are missing.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using NUnit.Framework;
using Slak.Tests.Cuda;
using Slak.Tests.Support;

namespace Slak.Tests.Interop;

[TestFixture]
[NonParallelizable]
public sealed class ExternalFrameworkTests
{
    private const string Python = "/usr/bin/python3";
    private static string? _buildDir;
    private static string? _buildError;

    private static (int Code, string Output) Run(string file, IEnumerable<string> args, string workDir, int timeoutMs,
                                                 IDictionary<string, string>? env = null)
    {
        var info = new ProcessStartInfo(file)
        {
            WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        foreach (string a in args) info.ArgumentList.Add(a);
        if (env is not null)
            foreach (var (k, v) in env) info.Environment[k] = v;
        Process process;
        try
        {
            process = Process.Start(info)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, $"could not start {file}: {e.Message}");
        }
        using (process)
        {
            var output = new StringBuilder();
            var lockObj = new object();
            void Append(object? sender, DataReceivedEventArgs e)
            {
                if (e.Data is not null) lock (lockObj) output.AppendLine(e.Data);
            }

            process.OutputDataReceived += Append;
            process.ErrorDataReceived += Append;
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            if (!process.WaitForExit(timeoutMs))
            {
                process.Kill(entireProcessTree: true);
                return (-2, $"{file} {string.Join(' ', args)} did not finish within {timeoutMs / 1000} s\n{output}");
            }
            process.WaitForExit();
            lock (lockObj) return (process.ExitCode, output.ToString());
        }
    }

    private static string Root() =>
        NvrtcTestSupport.RepositoryRoot() ?? throw new InconclusiveException("repository root not found");

    private static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
            .Any(d => d.Length > 0 && File.Exists(Path.Combine(d, tool)));

    // Builds libslak_kernels_emu.so, the smoke test and the documented example once per run; returns the build folder.
    private static string BuildCApi()
    {
        if (!OnPath("cmake")) Assert.Ignore("cmake is not installed (apt-get install cmake g++, or run .ci/setup)");
        if (_buildDir is not null) return _buildDir;
        if (_buildError is not null) Assert.Fail(_buildError);
        string root = Root();
        // The .NET build configures this folder for libslak_emu.so; reuse it (slak_emu is already built there).
        string dir = Path.Combine(root, "src", "Slak.Cuda", "obj", "emu");
        if (!File.Exists(Path.Combine(dir, "CMakeCache.txt")))
        {
            dir = NvrtcTestSupport.TempFolder();
            var (cc, co) = Run("cmake", ["-S", root, "-B", dir, "-DCMAKE_BUILD_TYPE=Release", "-Wno-dev"], root,
                               300_000);
            if (cc != 0) Assert.Fail(_buildError = "cmake configure failed:\n" + co);
        }
        // slak_capi_cpu_smoke also publishes libslak_kernels_cpu.so (src/Slak.Native, Native AOT) for the Python tests.
        string[] build = ["--build", dir, "--target", "slak_capi_smoke", "slak_capi_example", "slak_capi_cpu_smoke",
                          "--parallel", "2"];
        var (code, output) = Run("cmake", build, root, 600_000);
        if (code != 0)
        {
            // A folder configured before these targets existed: make knows no rule for them until CMake re-runs.
            Run("cmake", [dir], root, 300_000);
            (code, output) = Run("cmake", build, root, 600_000);
        }
        if (code != 0) Assert.Fail(_buildError = $"building the C ABI (cmake --build {dir}) failed:\n{output}");
        _buildDir = dir;
        return dir;
    }

    [Test]
    public void CApiSmokeTestPassesUnderCtest()
    {
        string dir = BuildCApi();
        var (code, output) = Run("ctest", ["--test-dir", dir, "-R", "^slak_capi_", "--output-on-failure"],
                                 dir, 300_000);
        TestContext.Out.WriteLine(output);
        Assert.That(code, Is.EqualTo(0), "ctest of the C ABI failed:\n" + output);
        Assert.That(output, Does.Contain("100% tests passed, 0 tests failed out of 3"),
                    "ctest did not run the emulator and cpu smoke tests and the example:\n" + output);
    }

    // ONNX export of torch.ops.slak (python/tests/onnx_export_case.py) run in ONNX Runtime: onnxruntime for Python is
    // not packaged for Debian, the C# one is a test dependency already. Each case's logits must equal the operator's.
    [Test]
    public void OnnxExportOfTheOperatorRunsInOnnxRuntime()
    {
        if (!File.Exists(Python)) Assert.Ignore($"{Python} is not installed (apt-get install python3-torch)");
        string root = Root();
        var (probe, probeOut) = Run(Python, ["-c", "import torch, numpy, onnx"], root, 120_000);
        if (probe != 0) Assert.Ignore("torch/numpy/onnx not importable (apt-get install python3-torch python3-onnx): "
                                      + probeOut.Trim());
        string dir = BuildCApi();
        string outDir = NvrtcTestSupport.TempFolder();
        int seed = TestRandom.NewSeed();
        var env = new Dictionary<string, string>
        {
            ["PYTHONPATH"] = Path.Combine(root, "python"), ["SLAK_KERNELS_LIBRARY"] = dir,
            ["PYTHONDONTWRITEBYTECODE"] = "1", ["SLAK_TEST_SEED"] = seed.ToString(CultureInfo.InvariantCulture),
        };
        var (code, output) = Run(Python, [Path.Combine(root, "python", "tests", "onnx_export_case.py"), outDir,
                                          seed.ToString(CultureInfo.InvariantCulture)], root, 300_000, env);
        TestContext.Out.WriteLine(output);
        Assert.That(code, Is.EqualTo(0), $"onnx_export_case.py failed (seed {seed}):\n{output}");
        foreach (string name in new[] { "functional", "module", "fused" })
        {
            string folder = Path.Combine(outDir, name);
            var input = Slak.IO.Npy.Read(Path.Combine(folder, "input.npy"));
            var expected = Slak.IO.Npy.Read(Path.Combine(folder, "expected.npy")).ToFloat32();
            using var session = Slak.Tests.Export.OnnxRuntimeRunner.Open(Path.Combine(folder, "model.onnx"));
            var (values, shape) = Slak.Tests.Export.OnnxRuntimeRunner.Run(session, input.ToFloat32(), input.GetShape());
            Assert.That(values, Has.Length.EqualTo(expected.Length), $"{name}: output size (shape {string.Join('x', shape)})");
            float scale = expected.Max(MathF.Abs);
            float err = values.Zip(expected, (a, b) => MathF.Abs(a - b)).Max();
            TestContext.Out.WriteLine($"{name}: ONNX Runtime vs the operator, max error {err:G3} (max |logit| {scale:G3})");
            Assert.That(err, Is.LessThanOrEqualTo(1e-5f * Math.Max(scale, 1f)),
                        $"{name}: ONNX Runtime's output differs from the operator's (seed {seed})");
        }
    }

    [Test]
    public void PyTorchOperatorAndCheckpointConverterTestsPass()
    {
        if (!File.Exists(Python)) Assert.Ignore($"{Python} is not installed (apt-get install python3-torch)");
        string root = Root();
        var (probe, probeOut) = Run(Python, ["-c", "import torch, numpy"], root, 120_000);
        if (probe != 0) Assert.Ignore("torch/numpy not importable by /usr/bin/python3 (apt-get install python3-torch): "
                                      + probeOut.Trim());
        string dir = BuildCApi();
        var env = new Dictionary<string, string>
        {
            ["PYTHONPATH"] = Path.Combine(root, "python"),
            ["SLAK_KERNELS_LIBRARY"] = dir,
            ["PYTHONDONTWRITEBYTECODE"] = "1",
            ["SLAK_TEST_SEED"] = TestRandom.NewSeed().ToString(),
        };
        // The converter test runs `slak infer` from the CLI built with the solution (same configuration as us).
        string config = new DirectoryInfo(TestContext.CurrentContext.TestDirectory).Parent?.Name ?? "Release";
        string cli = Path.Combine(root, "src", "Slak.Cli", "bin", config, "net10.0", "Slak.Cli.dll");
        if (File.Exists(cli)) env["SLAK_CLI_DLL"] = cli;
        var (code, output) = Run(Python, ["-m", "unittest", "discover", "-s", Path.Combine(root, "python", "tests"),
                                          "-v"], root, 600_000, env);
        TestContext.Out.WriteLine(output);
        Assert.That(code, Is.EqualTo(0), $"python tests failed (seed {env["SLAK_TEST_SEED"]}):\n{output}");
        Assert.That(output, Does.Match(@"Ran [1-9]\d* tests?"), "no python test ran:\n" + output);
        if (!File.Exists(cli))
            TestContext.Out.WriteLine($"note: {cli} not built, so the `slak infer` round trips were skipped");
    }
}
