"""Bad input raises ValueError saying what was expected and what came."""
import pytest
import torch

import rnnkit


@pytest.fixture
def layer():
    torch.manual_seed(0)
    return rnnkit.LSTM(4, input_size=3, return_state=True)


x = torch.randn(2, 5, 3)


@pytest.mark.parametrize("call,match", [
    (lambda l: l(torch.randn(5, 3)), r"expected a 3-D floating-point input tensor \(batch, time, features\), got .*\(5, 3\)"),
    (lambda l: l(torch.randn(2, 5, 3, 1)), r"3-D .* got .*\(2, 5, 3, 1\)"),
    (lambda l: l(torch.ones(2, 5, 3, dtype=torch.long)), r"floating-point .* got torch.int64"),
    (lambda l: l([[1.0]]), r"3-D .* got list"),
    (lambda l: l(torch.randn(2, 5, 7)), r"expected input with 3 features, got 7"),
    (lambda l: l(torch.randn(2, 0, 3)), r"at least one step"),
    (lambda l: l(x, lengths=[5, 2, 1]), r"expected lengths as 2 integers"),
    (lambda l: l(x, lengths=[5, 6]), r"lengths must lie in \[0, 5\].*max 6"),
    (lambda l: l(x, lengths=[5, -1]), r"lengths must lie in \[0, 5\].*min -1"),
    (lambda l: l(x, lengths=torch.tensor([1.5, 2.0])), r"expected lengths as 2 integers.*float"),
    (lambda l: l(x, mask=torch.ones(2, 4, dtype=torch.bool)), r"expected mask as a bool tensor of shape \(2, 5\)"),
    (lambda l: l(x, mask=torch.ones(2, 5)), r"bool tensor .* dtype torch.float32"),
    (lambda l: l(x, lengths=[5, 5], mask=torch.ones(2, 5, dtype=torch.bool)), r"either lengths= or mask="),
    (lambda l: l(x, (torch.zeros(1, 2, 4),)), r"tuple of 2 tensors"),
    (lambda l: l(x, (torch.zeros(1, 3, 4), torch.zeros(1, 3, 4))), r"shapes \[\(1, 2, 4\), \(1, 2, 4\)\], got \(1, 3, 4\)"),
    (lambda l: l(x, (torch.zeros(2, 4), torch.zeros(2, 4))), r"got \(2, 4\)"),
    (lambda l: l(x, (torch.zeros(1, 2, 4, dtype=torch.float64), torch.zeros(1, 2, 4))), r"state is torch.float64 .* input is torch.float32"),
    (lambda l: l(x.double()), r"input is torch.float64 .* parameters are torch.float32"),
])
def test_bad_input_raises_value_error(layer, call, match):
    with pytest.raises(ValueError, match=match):
        call(layer)


@pytest.mark.parametrize("make,match", [
    (lambda: rnnkit.LSTM(0), "positive integer"),
    (lambda: rnnkit.LSTM(4, num_layers=0), "num_layers"),
    (lambda: rnnkit.LSTM(4, merge_mode="max", bidirectional=True), "unknown merge_mode"),
    (lambda: rnnkit.LSTM(4, backend="cuda"), "unknown backend"),
    (lambda: rnnkit.LSTM(4, input_size=3, proj_size=4), "proj_size must be in"),
    (lambda: rnnkit.SimpleRNN(4, input_size=3, activation="swishy"), "unknown activation"),
    (lambda: rnnkit.GRU(4, input_size=3, recurrent_dropout=1.0), r"recurrent_dropout must be in \[0, 1\)"),
    (lambda: rnnkit.GRU(4, input_size=3, zoneout=-0.1), r"zoneout must be in \[0, 1\)"),
    (lambda: rnnkit.GRU(4, input_size=3, num_layers=2, dropout=1.5), r"dropout must be in \[0, 1\)"),
])
def test_bad_options_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_teacher_forcing_errors():
    layer = rnnkit.JordanRNN(4, input_size=3, output_size=2).train()
    with pytest.raises(ValueError, match=r"expected targets of shape \(2, 5, 2\)"):
        layer(x, targets=torch.zeros(2, 5, 3))
    stacked = rnnkit.JordanRNN(4, input_size=3, num_layers=2).train()
    with pytest.raises(ValueError, match="one forward layer"):
        stacked(x, targets=torch.zeros(2, 5, 4))
