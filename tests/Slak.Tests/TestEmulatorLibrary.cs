// Points the emulated device of this test assembly at libslak_emu_test.so: the emulator with the test-only kernels of
// tests/kernels (the execution-model self tests and the deliberately broken kernels of the sanitizer tests), which
// the production libslak_emu.so does not contain. Runs when the assembly loads, before any test touches the emulator;
// an explicit SLAK_EMU_LIBRARY wins.
using System.Runtime.CompilerServices;

namespace Slak.Tests;

internal static class TestEmulatorLibrary
{
    /// <summary>File name of the test build of the emulator, next to the test assembly.</summary>
    internal const string FileName = "libslak_emu_test.so";

    [ModuleInitializer]
    internal static void UseTestBuild()
    {
        if (Environment.GetEnvironmentVariable("SLAK_EMU_LIBRARY") is { Length: > 0 }) return;
        var path = Path.Combine(AppContext.BaseDirectory, FileName);
        if (File.Exists(path)) Environment.SetEnvironmentVariable("SLAK_EMU_LIBRARY", path);
    }
}
