"""Padding contributes nothing: NaN or huge values at masked steps change no output and no gradient."""
import pytest
import torch

import rnnkit

from helpers import holes_mask

# (layer class, options, backend, mask kind): every backend that sees masked steps.
CASES = [
    (rnnkit.LSTM, {"peephole": True}, "native", "holes"),
    (rnnkit.GRU, {"reset_after": False}, "native", "holes"),
    (rnnkit.LayerNormLSTM, {}, "native", "holes"),
    (rnnkit.SimpleRNN, {}, "native", "holes"),
    (rnnkit.JordanRNN, {}, "native", "holes"),
    (rnnkit.MinGRU, {}, "scan", "holes"),
    (rnnkit.MinLSTM, {}, "scan", "holes"),
    (rnnkit.LSTM, {"peephole": True}, "reference", "holes"),
    (rnnkit.MinGRU, {}, "reference", "holes"),
    (rnnkit.LSTM, {}, "torch", "right"),
    (rnnkit.GRU, {}, "auto", "holes"),  # torch's op cannot take holes: its fallback runs
]
IDS = [f"{c[0].__name__}-{c[2]}-{c[3]}" + ("-" + "-".join(c[1]) if c[1] else "") for c in CASES]


@pytest.mark.parametrize("scan_path", ["native", "logcumsumexp"])
@pytest.mark.parametrize("cls,options,backend,kind", CASES, ids=IDS)
def test_nan_in_padding_reaches_no_gradient(cls, options, backend, kind, scan_path, monkeypatch):
    if backend != "scan" and scan_path != "native":
        pytest.skip("the scan path only matters for the scan backend")
    if scan_path == "logcumsumexp":
        monkeypatch.setattr(rnnkit.kernels.scan, "native_module", lambda: None)
    torch.manual_seed(0)
    layer = cls(5, input_size=3, num_layers=2, bidirectional=cls is not rnnkit.JordanRNN, backend=backend,
                return_sequences=True, **options)
    B, T = 5, 6
    if kind == "holes":
        mask = holes_mask(B, T)
        mask[4, 0] = True  # every row has a valid step
    else:
        mask = torch.arange(T)[None, :] < torch.tensor([6, 4, 1, 3, 5])[:, None]
    clean = torch.where(mask[:, :, None], torch.randn(B, T, 3), 0.0)
    dirty = clean.clone()
    dirty[~mask] = float("nan")
    dirty[~mask & (torch.arange(T)[None, :] % 2 == 0)] = 1e30  # and absurd values
    results = []
    for x in (clean, dirty):
        x = x.requires_grad_()
        seq = layer(x, mask=mask)
        loss = (seq * torch.linspace(-1, 1, seq.shape[-1])).sum()
        results.append([seq, *torch.autograd.grad(loss, [x, *layer.parameters()])])
    for a, b in zip(*results):
        assert torch.isfinite(b).all()
        torch.testing.assert_close(b, a, rtol=0, atol=0)
