"""The native build: keyed by everything that changes the binary, honest when it cannot build or load."""
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import rnnkit
from rnnkit.cells import LayerNormLSTMCell
from rnnkit.kernels import build, native, reference

from helpers import holes_mask, make_cell, random_state


@pytest.fixture
def fresh_build_cache():
    build.reset()
    yield
    build.reset()


def native_key_dir():
    return build.build_dir(native.MODULE, native.SOURCES, build.base_flags() + build.arch_flags())


def layers_native_and_reference():
    torch.manual_seed(0)
    fast = rnnkit.LayerNormLSTM(5, input_size=3, return_sequences=True)
    slow = rnnkit.LayerNormLSTM(5, input_size=3, return_sequences=True, backend="reference")
    slow.load_state_dict(fast.state_dict())
    return fast, slow


def test_a_corrupt_cached_binary_runs_the_reference_loop(tmp_path, monkeypatch, fresh_build_cache):
    """A cached .so that cannot be loaded (truncated, another platform's): one warning naming the file,
    reference results, backend 'reference'; no crash."""
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    library = native_key_dir() / f"{native.MODULE}.so"
    library.parent.mkdir(parents=True)
    library.write_bytes(b"\x7fELF this is not a shared object")
    fast, slow = layers_native_and_reference()
    x = torch.randn(2, 6, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = fast(x)
        fast(x)
    messages = [str(w.message) for w in caught if "could not be loaded" in str(w.message)]
    assert len(messages) == 1 and str(library) in messages[0]
    assert fast.backend == "reference"
    torch.testing.assert_close(got, slow(x), rtol=0, atol=0)


def test_the_key_holds_everything_that_changes_the_binary(monkeypatch):
    base = build.key(native.MODULE, native.SOURCES, build.base_flags() + build.arch_flags())
    assert base["torch"] == torch.__version__ and base["python"].startswith(f"{sys.version_info[0]}.")
    assert base["cpu_features"] == build.cpu_features() and base["compiler"] == build.compiler_version()
    assert len(base["sources"]) == 64 and not any(f.startswith("-std") for f in base["flags"])
    here = native_key_dir()
    changes = [(build, "cpu_features", lambda: "fpu sse2 some-other-cpu"),
               (build, "compiler_version", lambda: "c++: g++ (Other) 9.9.9"),
               (build, "sources_hash", lambda sources: "0" * 64),
               (torch, "__version__", "9.9.9")]
    for owner, attr, value in changes:
        with monkeypatch.context() as m:
            m.setattr(owner, attr, value)
            assert native_key_dir() != here, attr
    portable = build.key(native.MODULE, native.SOURCES, build.base_flags())
    assert portable["cpu_features"] == "portable"
    assert build.build_dir(native.MODULE, native.SOURCES, build.base_flags()) != here


def test_another_cpus_cache_is_never_loaded(monkeypatch, fresh_build_cache):
    """A cache shared with a machine of another CPU: its binary sits under its own key; this machine loads
    (or builds) its own and computes the reference results on the native backend."""
    with monkeypatch.context() as m:
        m.setattr(build, "cpu_features", lambda: "fpu sse2 avx512-from-another-machine")
        foreign = native_key_dir() / f"{native.MODULE}.so"
    foreign.parent.mkdir(parents=True, exist_ok=True)
    foreign.write_bytes(b"would die with SIGILL here")
    try:
        fast, slow = layers_native_and_reference()
        x = torch.randn(2, 6, 3)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no fallback warning
            got = fast(x)
        assert fast.backend == "native"
        torch.testing.assert_close(got, slow(x), rtol=1e-5, atol=1e-5)
    finally:
        foreign.unlink()
        foreign.parent.rmdir()


def test_a_compiler_refusing_the_cpu_flag_gets_portable_flags(monkeypatch):
    calls = []

    def fake(name, sources, flags):
        calls.append(flags)
        if any(f in flags for f in build.arch_flags()):
            raise RuntimeError("c++: error: unrecognized command-line option '-march=native'")
        return "module"

    monkeypatch.setattr(build, "load_or_build", fake)
    if not build.arch_flags():
        pytest.skip("no CPU-specific flag on this machine")
    assert build.compile_module("m", ("x.cpp",)) == "module"
    assert calls[-1] == build.base_flags()   # OpenMP kept: the CPU flag was the trouble
    assert calls[0] == build.base_flags() + build.arch_flags()


def test_openmp_only_where_the_kernels_would_share_torchs_runtime(monkeypatch):
    """-fopenmp with GCC and torch's own libgomp.so.1 loaded; with another compiler or another runtime a second
    OpenMP runtime would ignore torch.set_num_threads, so no flag (and native.load's warning says so)."""
    monkeypatch.setattr(build.sys, "platform", "linux")
    monkeypatch.setattr(build.torch.backends.openmp, "is_available", lambda: True)
    monkeypatch.setattr(build, "gcc", lambda: True)
    monkeypatch.setattr(build, "torch_loaded", lambda name: name == "libgomp.so.1")
    assert build.thread_flags() == ["-fopenmp"]
    monkeypatch.setattr(build, "torch_loaded", lambda name: False)   # e.g. a renamed libgomp-<hash>.so.1
    assert build.thread_flags() == []
    monkeypatch.setattr(build, "torch_loaded", lambda name: True)
    monkeypatch.setattr(build, "gcc", lambda: False)                 # clang links its own libomp
    assert build.thread_flags() == []
    monkeypatch.setattr(build, "gcc", lambda: True)
    monkeypatch.setattr(build.sys, "platform", "darwin")
    assert build.thread_flags() == []


def test_a_compiler_refusing_openmp_keeps_the_cpu_flag_and_says_what_dropping_openmp_costs(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(build, "thread_flags", lambda: ["-fopenmp"])

    def fake(name, sources, flags):
        calls.append(flags)
        if "-fopenmp" in flags:
            raise RuntimeError("c++: error: unsupported option '-fopenmp'")
        return "module"

    monkeypatch.setattr(build, "load_or_build", fake)
    assert build.compile_module("m", ("x.cpp",)) == "module"
    assert calls == [build.FLAGS + ["-fopenmp"] + build.arch_flags(), build.FLAGS + build.arch_flags()]
    assert "without ['-fopenmp']; the kernels' row split then runs on one thread" in capsys.readouterr().err


def test_sources_use_no_symbols_outside_torchs_api():
    """No BLAS symbols that only some torch builds export, no libmvec declarations (glibc >= 2.35)."""
    for path in Path(build.CSRC).iterdir():
        text = path.read_text()
        for banned in ("sgemm_", "dgemm_", "simd(\"notinbranch\")", "-march"):
            assert banned not in text, (path.name, banned)


def test_lnlstm_kernel_uses_the_cells_eps():
    cell = make_cell(LayerNormLSTMCell, {}, dtype=torch.float64)
    cell.eps = 0.5  # large enough to change every normalisation
    x, state = torch.randn(5, 7, 3, dtype=torch.float64), random_state(cell, 5)
    got = native.run(cell, x, state, mask=holes_mask(5, 7))
    want = reference.recur(cell, x, state, mask=holes_mask(5, 7))
    for a, b in zip([got[0], got[1], *got[2]], [want[0], want[1], *want[2]]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    layer = rnnkit.LayerNormLSTM(4, input_size=3).double().eval()
    layer.cells()[0][0].eps = 0.5
    xs = torch.randn(2, 5, 3, dtype=torch.float64)
    torch.testing.assert_close(layer.step(xs[:, 0])[0], layer(xs[:, :1]))


def test_rnnkit_data_is_reachable_after_import_rnnkit():
    code = "import rnnkit; print(rnnkit.data.Vocabulary.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "Vocabulary", out.stderr


def test_a_stale_lock_from_a_killed_build_is_removed_not_waited_on(tmp_path, monkeypatch):
    """torch's build lock has no timeout: a build killed midway left ``build/lock`` and every later build of the same
    key waited forever, silently. Holding rnnkit's own lock (released by the kernel when a process dies), a
    leftover torch lock is stale and is removed."""
    from torch.utils import cpp_extension
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    directory = build.build_dir("fake", ("lstm.cpp",), build.FLAGS)
    (directory / "build").mkdir(parents=True)
    (directory / "build" / "lock").write_text("")   # what a killed build leaves

    def fake_load(name, sources, extra_cflags, extra_ldflags, build_directory, verbose):
        lock = Path(build_directory) / "lock"
        if lock.exists():   # the real cpp_extension.load would wait here forever
            raise AssertionError("a stale lock was left in place")
        (Path(build_directory) / f"{name}.so").write_bytes(b"a library")
        return "the module"

    monkeypatch.setattr(cpp_extension, "load", fake_load)
    assert build.load_or_build("fake", ("lstm.cpp",), build.FLAGS) == "the module"
    assert (directory / "fake.so").read_bytes() == b"a library"
