"""`rnnkit info` reports versions and every cell with the backend that actually runs it."""
import warnings

import pytest
import torch

import rnnkit
from rnnkit.cells import CELLS
from rnnkit.info import VARIANTS, report
from rnnkit.kernels import build, scan


def table(text):
    lines = text.splitlines()
    start = lines.index("cell                                  backend") + 1
    return {line[:38].strip(): line[38:].strip() for line in lines[start:start + len(VARIANTS)]}


@pytest.fixture
def fresh_build_cache():
    build.reset()
    yield
    build.reset()


def test_info_lists_every_cell_family_with_the_backend_that_runs():
    text = report()
    assert f"rnnkit {rnnkit.__version__}" in text and f"PyTorch {torch.__version__}" in text
    assert f"threads {torch.get_num_threads()}" in text
    assert {name for _, name, _, _ in VARIANTS} == set(CELLS)
    rows = table(text)
    assert len(rows) == len(VARIANTS)
    assert rows["LSTM"] == "torch" and rows["Elman RNN (relu)"] == "torch"
    # this machine builds the kernels (test_native fails otherwise): info must say so
    assert build.load("rnnkit_native", rnnkit.kernels.native.SOURCES) is not None
    for label in ("LSTM + peepholes", "Layer-normalised LSTM", "Jordan RNN", "GRU (Cho et al. 2014 form)",
                  "LSTM + zoneout"):
        assert rows[label] == "native", (label, rows[label])
    assert rows["minGRU (Feng et al. 2024)"] == f"scan ({scan.path(torch.zeros(1))})"
    assert "rnnkit_native   loaded" in text


def test_info_says_reference_when_the_native_build_fails(monkeypatch, fresh_build_cache):
    def broken(name, sources):
        raise RuntimeError("c++: fatal error: simulated")

    monkeypatch.setattr(build, "compile_module", broken)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = report()
    rows = table(text)
    assert rows["LSTM + peepholes"] == "reference" and rows["Layer-normalised LSTM"] == "reference"
    assert rows["LSTM"] == "torch"
    assert rows["minGRU (Feng et al. 2024)"] == "scan (logcumsumexp)"
    assert "rnnkit_native   unavailable: the build failed (c++: fatal error: simulated)" in text
