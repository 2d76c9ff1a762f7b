"""Tracing and export record torch operations only: native and scan layers take a traceable path there."""
import warnings

import pytest
import torch

import rnnkit
from rnnkit.layers import recurrent

CASES = [(rnnkit.LayerNormLSTM, {}, "native", "reference"), (rnnkit.GRU, {"reset_after": False}, "native", "reference"),
         (rnnkit.LSTM, {"peephole": True}, "native", "reference"), (rnnkit.MinGRU, {}, "scan", "scan"),
         (rnnkit.MinLSTM, {}, "scan", "scan"), (rnnkit.LSTM, {}, "torch", "torch")]
IDS = ["lnlstm", "gru-cho", "lstm-peephole", "mingru", "minlstm", "lstm-torch"]


@pytest.mark.parametrize("cls,options,eager,traced", CASES, ids=IDS)
def test_traced_layer_computes_like_eager_on_new_inputs(cls, options, eager, traced):
    """Traced at one length, run on other inputs of that length: equal to eager (not a graph of constants)."""
    torch.manual_seed(0)
    layer = cls(6, input_size=3, num_layers=2, return_sequences=True, **options).eval()
    layer(torch.randn(2, 5, 3))
    assert layer.backend == eager
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the routing warning, and torch's tracer warnings
        graph = torch.jit.trace(layer, torch.randn(2, 5, 3), check_trace=False)
    assert layer.backend == traced  # what tracing recorded
    for seed in (1, 2):
        x = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(seed))
        torch.testing.assert_close(graph(x), layer(x), rtol=1e-5, atol=1e-6)
    assert layer.backend == eager  # eager calls take the fast path again


def test_export_routes_native_layers_to_the_reference_loop(monkeypatch):
    """Under torch.onnx.export (is_in_onnx_export) the native kernels are not called; one warning says so."""
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    monkeypatch.setattr(recurrent, "WARNED", set())
    torch.manual_seed(0)
    layer = rnnkit.LayerNormLSTM(4, input_size=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer(torch.randn(2, 5, 3))
        layer(torch.randn(2, 5, 3))
    assert layer.backend == "reference"
    assert len([w for w in caught if "traced or exported" in str(w.message)]) == 1


def test_export_routes_the_scan_to_torch_operations(monkeypatch):
    """Under export the compiled scan (an opaque Python op in a graph) is not called; the logcumsumexp scan is."""
    def opaque(*args):
        raise AssertionError("the compiled scan was called during export")

    torch.manual_seed(0)
    layer = rnnkit.MinGRU(4, input_size=3, return_sequences=True)
    x = torch.randn(2, 5, 3)
    want = layer(x)
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    monkeypatch.setattr(rnnkit.kernels.scan.FusedMinScan, "apply", opaque)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.testing.assert_close(layer(x), want, rtol=1e-5, atol=1e-6)
    assert layer.backend == "scan"
