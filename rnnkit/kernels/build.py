"""Building native code: on first use (never at import), cached across processes, reported once.

``load(name, sources)`` compiles ``csrc/<sources>`` into a torch extension
with torch.utils.cpp_extension and ninja, in a cache directory
(``$RNNKIT_CACHE``, default ``~/.cache/rnnkit``) keyed by the torch version;
torch rebuilds only when a source or flag changes. When the build cannot
happen (no compiler, no ninja, ``RNNKIT_NATIVE=0``, a compile error), it
returns None after one warning naming the reason, and callers fall back to
the reference loop.
"""
from __future__ import annotations

import functools
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import torch

CSRC = Path(__file__).parent / "csrc"
CFLAGS = ["-O3", "-march=native", "-ffast-math", "-fno-finite-math-only", "-std=c++17"]


def cache_dir() -> Path:
    root = Path(os.environ.get("RNNKIT_CACHE") or Path.home() / ".cache" / "rnnkit")
    return root / f"torch-{torch.__version__}-py{sys.version_info.major}{sys.version_info.minor}"


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
        except Exception as error:  # a compile or link error: report it, keep working
            last = str(error).strip().splitlines()
            reason = f"the build failed ({last[-1] if last else type(error).__name__})"
    FAILURES[name] = reason
    warnings.warn(f"rnnkit: native kernels {name!r} unavailable: {reason}; using the reference loop",
                  RuntimeWarning, stacklevel=3)
    return None


def compile_module(name: str, sources: tuple[str, ...]):
    from torch.utils import cpp_extension

    build_dir = cache_dir() / name
    build_dir.mkdir(parents=True, exist_ok=True)
    fresh = not any(build_dir.glob("*.so"))
    start = time.perf_counter()
    if fresh:
        print(f"rnnkit: building native kernels {name!r} (once; cached in {build_dir})",
              file=sys.stderr, flush=True)
    module = cpp_extension.load(name=name, sources=[str(CSRC / s) for s in sources],
                                extra_cflags=CFLAGS, build_directory=str(build_dir), verbose=False)
    if fresh:
        print(f"rnnkit: built {name!r} in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return module
