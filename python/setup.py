"""Builds and installs slak_torch with its native libraries inside the package (slak_torch/_native/).

    python3 -m venv --system-site-packages ~/slak-venv         # Debian's torch stays visible; pip may install here
    ~/slak-venv/bin/pip install --no-build-isolation ./python  # run from the repository root

The build step runs CMake on the repository (the folder above this one) into <repo>/build, builds libslak_kernels_cpu.so (the C# CPU engine, Native AOT: needs the .NET SDK),
libslak_kernels_emu.so + libslak_emu.so (the CUDA kernels on the host emulator) and, when CMake found nvcc,
libslak_kernels.so, installs them into a staging prefix (so that their run paths are the installed ones, $ORIGIN)
and copies them into the package. Nothing is read from environment variables. Needs cmake, g++ and dotnet; offline.
"""
import pathlib
import shutil
import subprocess
import sys
import tempfile

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
BUILD = REPO / "build"
LIBRARIES = ("libslak_kernels_cpu.so", "libslak_kernels_emu.so", "libslak_emu.so", "libslak_kernels.so")
REQUIRED = ("libslak_kernels_cpu.so", "libslak_kernels_emu.so", "libslak_emu.so")


def _run(*args):
    print("slak_torch build:", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], check=True, cwd=REPO)


def build_native(destination):
    """Builds the C ABI libraries with CMake and copies them into destination; returns the names copied."""
    if not (REPO / "CMakeLists.txt").exists():
        sys.exit(f"slak_torch: {REPO} is not the Slak.Cuda repository (no CMakeLists.txt): install from a checkout")
    # Configured every time (quick when it is): an existing build/ may predate the CPU library or lack dotnet.
    _run("cmake", "-S", REPO, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release", "-DSLAK_BUILD_CPU_LIBRARY=ON")
    targets = ["slak_kernels_emu", "slak_kernels_cpu_build"]
    listing = subprocess.run(["cmake", "--build", str(BUILD), "--target", "help"], capture_output=True, text=True,
                             cwd=REPO).stdout
    if any(line.strip(". ").split(" ")[0] == "slak_kernels" for line in listing.splitlines()):
        targets.append("slak_kernels")
    _run("cmake", "--build", BUILD, "--parallel", "--target", *targets)
    with tempfile.TemporaryDirectory() as stage:
        _run("cmake", "--install", BUILD, "--prefix", stage)
        libs = [p for p in pathlib.Path(stage).rglob("*.so") if p.name in LIBRARIES]
        missing = sorted(set(REQUIRED) - {p.name for p in libs})
        if missing:
            sys.exit(f"slak_torch: the CMake install has no {', '.join(missing)} (is the .NET SDK on PATH?)")
        destination.mkdir(parents=True, exist_ok=True)
        for lib in libs:
            shutil.copy2(lib, destination / lib.name)
        return sorted(p.name for p in libs)


class BuildPyWithNative(build_py):
    def run(self):
        super().run()
        copied = build_native(pathlib.Path(self.build_lib) / "slak_torch" / "_native")
        print("slak_torch: packaged", ", ".join(copied), flush=True)


class BinaryDistribution(Distribution):
    """The wheel carries native libraries: platform-specific, not pure Python."""

    def has_ext_modules(self):
        return True


setup(
    name="slak_torch",
    version="0.3.0",
    description="SLaK's decomposed large-kernel depthwise convolution as a PyTorch operator (torch.ops.slak)",
    license="MIT",
    packages=["slak_torch"],
    python_requires=">=3.9",
    cmdclass={"build_py": BuildPyWithNative},
    distclass=BinaryDistribution,
    zip_safe=False,
)
