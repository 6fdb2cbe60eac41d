"""ctypes binding of the SLaK C ABI (include/slak/slak.h).

Three builds of the same ABI:
  cpu       libslak_kernels_cpu.so   the C# CPU engine (Native AOT; multithreaded, sparse-aware): CPU tensors
  emulator  libslak_kernels_emu.so   the CUDA kernels on the host CUDA emulator (slow; for tests): CPU tensors on
                                     request (slak_torch.cpu_backend("emulator"))
  cuda      libslak_kernels.so       nvcc, device pointers: CUDA tensors
Where they are looked up, first hit wins: $SLAK_KERNELS_{CPU,EMU,CUDA}_LIBRARY, $SLAK_KERNELS_LIBRARY (a folder, or
a file of that backend), the package's own _native/ folder (pip install puts the libraries there), the CMake build
dirs build/ and out/ at the repository root, then the loader's default search (an installed library). A library is
accepted only when its slak_abi_version() equals ABI_VERSION and slak_backend_name() is the wanted backend, so a
stale or wrong build fails loudly with the paths tried instead of computing garbage.
"""
import ctypes
import os
import pathlib
import threading

ABI_VERSION = 1
MAX_BRANCHES = 3

STATUS_NAMES = {
    0: "SLAK_STATUS_SUCCESS", 1: "SLAK_STATUS_NULL_POINTER", 2: "SLAK_STATUS_INVALID_ARGUMENT",
    3: "SLAK_STATUS_UNSUPPORTED_LAYOUT", 4: "SLAK_STATUS_WORKSPACE_TOO_SMALL", 5: "SLAK_STATUS_PROBLEM_TOO_LARGE",
    6: "SLAK_STATUS_LAUNCH_FAILED", 7: "SLAK_STATUS_INTERNAL_ERROR",
}


class SlakError(RuntimeError):
    """A slak_* call returned a status other than SLAK_STATUS_SUCCESS; the message is slak_last_error()."""

    def __init__(self, function, status, message):
        super().__init__(f"{function} failed with {STATUS_NAMES.get(status, status)}: {message}")
        self.status = status


class DecomposedParams(ctypes.Structure):
    """slak_decomposed_dwconv2d_params."""
    _fields_ = [("n", ctypes.c_int64), ("c", ctypes.c_int64), ("h", ctypes.c_int64), ("w", ctypes.c_int64),
                ("x_stride", ctypes.c_int64 * 4), ("y_stride", ctypes.c_int64 * 4),
                ("num_branches", ctypes.c_int32),
                ("kh", ctypes.c_int32 * MAX_BRANCHES), ("kw", ctypes.c_int32 * MAX_BRANCHES)]


_FloatPtrArray = ctypes.c_void_p * MAX_BRANCHES
_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
_REPO_ROOT = _PACKAGE_DIR.parents[1]
LIBRARY_NAMES = {"cpu": "libslak_kernels_cpu.so", "emulator": "libslak_kernels_emu.so", "cuda": "libslak_kernels.so"}
# Each backend's own variable (read in _specific_library; named in the not-found message).
_ENV = {"cpu": "SLAK_KERNELS_CPU_LIBRARY", "emulator": "SLAK_KERNELS_EMU_LIBRARY", "cuda": "SLAK_KERNELS_CUDA_LIBRARY"}


def _specific_library(backend):
    """The library path a backend's own variable names, or None."""
    if backend == "cpu":
        return os.environ.get("SLAK_KERNELS_CPU_LIBRARY")
    if backend == "emulator":
        return os.environ.get("SLAK_KERNELS_EMU_LIBRARY")
    return os.environ.get("SLAK_KERNELS_CUDA_LIBRARY")


def _candidates(backend):
    names = LIBRARY_NAMES
    specific = _specific_library(backend)
    if specific:
        yield specific
    generic = os.environ.get("SLAK_KERNELS_LIBRARY")
    if generic:
        p = pathlib.Path(generic)
        yield str(p / names[backend]) if p.is_dir() else generic
    yield str(_PACKAGE_DIR / "_native" / names[backend])
    for d in ("build", "out", "build/release", "cmake-build-release"):
        yield str(_REPO_ROOT / d / names[backend])
    yield names[backend]  # installed: ld.so's search path


class _Library:
    def __init__(self, path):
        lib = ctypes.CDLL(path)
        self.path = path
        lib.slak_abi_version.restype = ctypes.c_int
        lib.slak_backend_name.restype = ctypes.c_char_p
        lib.slak_last_error.restype = ctypes.c_char_p
        P, V, S = ctypes.POINTER(DecomposedParams), ctypes.c_void_p, ctypes.c_size_t
        for name, args in {
            "slak_decomposed_dwconv2d_workspace_size": [P, ctypes.POINTER(S)],
            "slak_decomposed_dwconv2d_bwd_filter_workspace_size": [P, ctypes.POINTER(S)],
            "slak_decomposed_dwconv2d_fwd": [P, V, V, V, V, V, S, V],
            "slak_decomposed_dwconv2d_bwd_data": [P, V, V, V, V, V, S, V],
            "slak_decomposed_dwconv2d_bwd_filter": [P, V, V, V, V, ctypes.c_int, V, S, V],
        }.items():
            f = getattr(lib, name)
            f.argtypes = args
            f.restype = ctypes.c_int
        self.lib = lib
        self.abi = lib.slak_abi_version()
        self.backend = lib.slak_backend_name().decode()
        if self.backend == "cpu":
            lib.slak_cpu_num_threads.restype = ctypes.c_int
            lib.slak_cpu_set_num_threads.argtypes = [ctypes.c_int]
            lib.slak_cpu_set_num_threads.restype = ctypes.c_int

    def call(self, name, *args):
        status = getattr(self.lib, name)(*args)
        if status != 0:
            raise SlakError(name, status, self.lib.slak_last_error().decode(errors="replace"))


_cache = {}
_lock = threading.Lock()


def load(backend):
    """The C ABI library for 'cpu', 'emulator' or 'cuda'; raises OSError with every path tried."""
    with _lock:
        if backend in _cache:
            return _cache[backend]
        tried = []
        for path in _candidates(backend):
            if os.sep in path and not os.path.exists(path):
                tried.append(f"{path}: not found")
                continue
            try:
                lib = _Library(path)
            except OSError as e:
                tried.append(f"{path}: {e}")
                continue
            if lib.abi != ABI_VERSION or lib.backend != backend:
                tried.append(f"{path}: ABI {lib.abi} backend {lib.backend!r}, need ABI {ABI_VERSION} {backend!r}")
                continue
            _cache[backend] = lib
            return lib
        raise OSError(f"no usable SLaK {backend} kernel library ({LIBRARY_NAMES[backend]}); install the package with "
                      f"pip (docs/plug-in.md), or build it with cmake and/or set {_ENV[backend]}. Tried:\n  "
                      + "\n  ".join(tried))
