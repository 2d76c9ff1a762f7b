"""Autocast (bf16 on the CPU) runs through any stack of layers, on every backend."""
import pytest
import torch

import rnnkit
from rnnkit.cells import ElmanCell, GRUCell, LayerNormLSTMCell, LSTMCell, MinGRUCell
from rnnkit.layers import Bidirectional, Recurrent, Stacked

CLASSES = [(rnnkit.LSTM, {}), (rnnkit.LSTM, {"peephole": True}), (rnnkit.GRU, {"reset_after": False}),
           (rnnkit.LayerNormLSTM, {}), (rnnkit.MinGRU, {}), (rnnkit.SimpleRNN, {}), (rnnkit.JordanRNN, {})]
IDS = ["lstm-torch", "lstm-peephole-native", "gru-cho-native", "lnlstm-native", "mingru-scan", "rnn-torch",
       "jordan-native"]


def close_to_float32(build, x):
    """The layer under bf16 autocast: runs forward and backward, finite, near its float32 result."""
    torch.manual_seed(0)
    layer = build()
    want = layer(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = layer(x)
    grads = torch.autograd.grad(got.float().square().sum(), list(layer.parameters()))
    assert all(torch.isfinite(g).all() for g in grads)
    torch.testing.assert_close(got.float(), want, rtol=0.05, atol=0.05)
    return layer


@pytest.mark.parametrize("cls,options", CLASSES, ids=IDS)
@pytest.mark.parametrize("layout", [{"num_layers": 3}, {"num_layers": 2, "bidirectional": True}],
                         ids=["stacked", "bidirectional"])
def test_stacked_layers_run_under_autocast(cls, options, layout):
    if cls is rnnkit.JordanRNN and layout.get("bidirectional"):
        layout = {"num_layers": 2}
    close_to_float32(lambda: cls(8, input_size=3, return_sequences=True, **options, **layout), torch.randn(2, 6, 3))


def test_a_stack_of_every_backend_runs_under_autocast():
    """torch's fused LSTM (bf16 output) feeds a native layer, the scan, a reference cell and a bidirectional GRU."""
    def build():
        return Stacked([Recurrent(LSTMCell(3, 8), return_sequences=True),
                        Recurrent(LayerNormLSTMCell(8, 8), return_sequences=True),
                        Recurrent(MinGRUCell(8, 8), return_sequences=True),
                        Recurrent(ElmanCell(8, 8, activation=torch.nn.functional.softsign), return_sequences=True),
                        Bidirectional(Recurrent(GRUCell(8, 8), return_sequences=True))], return_sequences=True)
    layer = close_to_float32(build, torch.randn(2, 6, 3))
    assert layer.backend == "torch+native+scan+reference"  # distinct names, bottom first


def test_separate_layers_in_sequence_under_autocast():
    """Two layers called one after the other (as Sequential does): the second takes the first's bf16 output."""
    torch.manual_seed(0)
    first = rnnkit.LSTM(8, input_size=3, return_sequences=True)
    second = rnnkit.LayerNormLSTM(8, input_size=8, return_state=True)
    x = torch.randn(2, 5, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = first(x)
        assert y.dtype == torch.bfloat16  # torch's fused op under autocast, as torch.nn.LSTM
        out, state = second(y)
        out2, _ = second(y, state)  # carried state goes back in
    assert second.backend == "native" and torch.isfinite(out2).all()
