"""Building native code: on first use (never at import), cached across processes, reported once.

``load(name, sources)`` returns the compiled module ``name`` built from
``csrc/<sources>``, or None after one warning naming the reason (no
compiler, no ninja, ``RNNKIT_NATIVE=0``, a compile error, a cached binary
that cannot be loaded); callers then run the reference loop and say so.

The cache (``$RNNKIT_CACHE``, default ``~/.cache/rnnkit``) holds one
directory per key, and the key holds everything that changes the binary:
the module, torch's and Python's versions, the machine, the CPU's feature
list (the code is compiled for this CPU's vector units with
``-march=native`` / ``-mcpu=native``), the compiler's version, the flags,
and a hash of the sources and headers. A cache shared between machines (NFS
home, container image, CI cache) therefore never hands one CPU's binary to
another; a compiler that refuses the native-CPU flag gets one more try with
portable flags (its own key). A cached ``<name>.so`` is imported directly
(no compiler call); a fresh build goes through torch.utils.cpp_extension and
ninja in ``<dir>/build`` and is then moved into place atomically. Torch's own
language-standard flag is left alone.
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

CSRC = Path(__file__).parent / "csrc"
FLAGS = ["-O3", "-ffast-math", "-fno-finite-math-only"]  # finite-math kept off: inf and NaN stay meaningful
OPENMP = "-fopenmp"   # a compile flag the link needs too (thread_flags)
_IMPORTED: dict[str, object] = {}  # library path -> module: an extension is initialised once per process


class LoadError(RuntimeError):
    """A cached binary exists but cannot be loaded here."""


def cache_root() -> Path:
    return Path(os.environ.get("RNNKIT_CACHE") or Path.home() / ".cache" / "rnnkit")


def cache_dir() -> Path:
    """Where the builds live (one directory per key below it)."""
    return cache_root()


def thread_flags() -> list[str]:
    """``-fopenmp`` where the kernels can share torch's OpenMP threads. at::parallel_for (ATen/Parallel-inl.h) is
    an inline template that splits its range over torch's threads only in a file compiled with OpenMP on;
    compiled without it, it quietly runs the whole range on the calling thread. The kernels' row split went
    through it so, on one thread whatever torch's thread count, until this flag (benchmarks/results/keras-speed-*).
    Only where the objects then use torch's own runtime: Linux, GCC (whose -fopenmp links libgomp.so.1), and a
    torch that loaded a library of that very name (the pip wheels ship torch/lib/libgomp.so.1), so the loader
    reuses it. Elsewhere (Apple's compiler, clang's libomp, a torch on Intel's runtime or a renamed libgomp) a
    second OpenMP runtime would ignore torch.set_num_threads, so the split stays on one thread there, and
    native.load says so once."""
    if not (sys.platform.startswith("linux") and torch.backends.openmp.is_available()):
        return []
    return [OPENMP] if gcc() and torch_loaded("libgomp.so.1") else []


@functools.cache
def gcc() -> bool:
    """True when the compiler torch's extension builder calls ($CXX, else c++) is GCC."""
    compiler = os.environ.get("CXX", "c++")
    try:
        out = subprocess.run([compiler, "-dM", "-E", "-x", "c++", "/dev/null"], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "__GNUC__" in out and "__clang__" not in out


def torch_loaded(name: str) -> bool:
    """True when this process has mapped a shared library file named exactly ``name`` (Linux /proc/self/maps)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return False
    return any(line.rsplit("/", 1)[-1] == name for line in maps.splitlines() if "/" in line)


def base_flags() -> list[str]:
    """The flags of every build, portable or not."""
    return FLAGS + thread_flags()


def arch_flags() -> list[str]:
    """The flag that compiles for this CPU's vector units (its features are part of the key)."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return ["-march=native"]
    if machine in ("aarch64", "arm64"):
        return ["-mcpu=native"]
    return []


@functools.cache
def cpu_features() -> str:
    """This CPU's feature list (/proc/cpuinfo "flags" on x86, "Features" on Arm), sorted."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    for line in text.splitlines():
        field, _, value = line.partition(":")
        if field.strip() in ("flags", "Features"):
            return " ".join(sorted(set(value.split())))
    return f"{platform.machine()} {platform.processor()}"


@functools.cache
def compiler_version() -> str:
    compiler = os.environ.get("CXX", "c++")
    try:
        out = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return f"{compiler} (version unknown)"
    return f"{compiler}: {out.splitlines()[0] if out else 'version unknown'}"


def sources_hash(sources: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for path in [CSRC / s for s in sources] + sorted(CSRC.glob("*.h")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def key(name: str, sources: tuple[str, ...], flags: list[str]) -> dict:
    """Everything that changes the binary of module ``name``."""
    return {"module": name, "torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(),
            "cpu_features": cpu_features() if any(f in flags for f in arch_flags()) else "portable",
            "compiler": compiler_version(), "flags": flags, "sources": sources_hash(sources)}


def build_dir(name: str, sources: tuple[str, ...], flags: list[str]) -> Path:
    digest = hashlib.sha256(json.dumps(key(name, sources, flags), sort_keys=True).encode()).hexdigest()
    return cache_root() / f"{name}-{digest[:16]}"


def unavailable_reason() -> str | None:
    """Why native code cannot be built here, or None if it can."""
    if os.environ.get("RNNKIT_NATIVE", "1") == "0":
        return "disabled by RNNKIT_NATIVE=0"
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        return f"no C++ compiler found (looked for {compiler!r}; set CXX or install g++)"
    try:
        import ninja  # noqa: F401  (torch's build uses the ninja binary this wheel provides)
    except ImportError:
        if shutil.which("ninja") is None:
            return "ninja is not installed (pip install ninja)"
    return None


FAILURES: dict[str, str] = {}  # module name -> why it could not be built or loaded (this process)


def failure(name: str) -> str | None:
    """Why module ``name`` could not be built or loaded in this process, or None (not tried, or built)."""
    return FAILURES.get(name)


def reset() -> None:
    """Forget every build and failure of this process (tests; after fixing a compiler)."""
    load.cache_clear()
    FAILURES.clear()


@functools.cache
def load(name: str, sources: tuple[str, ...]):
    """The compiled module ``name`` built from ``csrc/<sources>``, or None (one warning) if it cannot be."""
    FAILURES.pop(name, None)
    reason = unavailable_reason()
    if reason is None:
        try:
            return compile_module(name, sources)
        except Exception as error:  # a compile, link or load error: report it, keep working
            reason = str(error) if isinstance(error, LoadError) else f"the build failed ({last_line(error)})"
    FAILURES[name] = reason
    warnings.warn(f"rnnkit: native kernels {name!r} unavailable: {reason}; using the reference loop",
                  RuntimeWarning, stacklevel=3)
    return None


def last_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[-1] if lines else type(error).__name__


def compile_module(name: str, sources: tuple[str, ...]):
    """The module from the cache, or built into it: with the native-CPU flag and OpenMP first, then without
    OpenMP, then without the CPU flag, then with neither (each retry says which flags it drops, and what
    dropping OpenMP costs)."""
    attempts, base, arch = [], base_flags(), arch_flags()
    for flags in (base + arch, FLAGS + arch, base, FLAGS):
        if flags not in attempts:
            attempts.append(flags)
    for flags, after in zip(attempts, attempts[1:] + [None]):
        try:
            return load_or_build(name, sources, flags)
        except LoadError:
            raise
        except Exception as error:
            if after is None:
                raise
            dropped = [f for f in flags if f not in after]
            cost = "; the kernels' row split then runs on one thread" if OPENMP in dropped else ""
            print(f"rnnkit: the build failed ({last_line(error)}); retrying without {dropped}{cost}",
                  file=sys.stderr, flush=True)


def load_or_build(name: str, sources: tuple[str, ...], flags: list[str]):
    directory = build_dir(name, sources, flags)
    library = directory / f"{name}.so"
    if str(library) in _IMPORTED:
        return _IMPORTED[str(library)]
    if library.exists():
        return import_library(name, library)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "build.flock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)   # one build per key; the kernel releases it if this process dies
        if library.exists():   # another process built it while we waited
            return import_library(name, library)
        return build(name, sources, flags, directory, library)


def build(name: str, sources: tuple[str, ...], flags: list[str], directory: Path, library: Path):
    """Compile into ``directory`` (the caller holds its build lock)."""
    from torch.utils import cpp_extension

    work = directory / "build"
    work.mkdir(parents=True, exist_ok=True)
    # torch's own lock file has no timeout: one left by a killed build would make this wait forever.
    # Holding the lock above, no other rnnkit process is building here, so such a file is stale.
    stale = work / "lock"
    if stale.exists():
        print(f"rnnkit: removing a stale build lock left by an interrupted build ({stale})", file=sys.stderr,
              flush=True)
        stale.unlink(missing_ok=True)
    (directory / "key.json").write_text(json.dumps(key(name, sources, flags), indent=1, sort_keys=True) + "\n")
    start = time.perf_counter()
    print(f"rnnkit: building native kernels {name!r} (once; cached in {directory})", file=sys.stderr, flush=True)
    module = cpp_extension.load(name=name, sources=[str(CSRC / s) for s in sources], extra_cflags=flags,
                                extra_ldflags=[f for f in flags if f == OPENMP],
                                build_directory=str(work), verbose=False)
    print(f"rnnkit: built {name!r} in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    partial = directory / f"{name}.so.{os.getpid()}.tmp"
    shutil.copyfile(work / f"{name}.so", partial)
    os.replace(partial, library)  # atomic: another process sees no library or the whole one
    _IMPORTED[str(library)] = module
    return module


def import_library(name: str, library: Path):
    """Import a cached extension; LoadError (naming the file and the reason) if it cannot be loaded here."""
    try:
        spec = importlib.util.spec_from_file_location(name, library)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as error:  # ImportError (bad ELF, missing symbol), OSError
        raise LoadError(f"the cached binary {library} could not be loaded ({last_line(error)}); "
                        f"delete {library.parent} to rebuild it") from error
    _IMPORTED[str(library)] = module
    return module
