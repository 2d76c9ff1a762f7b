"""A forecaster: a recurrent encoder of the last ``lookback`` steps, and a head that emits the next
``horizon`` steps at once (direct multi-output), or a recurrent decoder unrolled over them (seq2seq).

    direct:   x (B, L, I) -> encoder -> h_L (B, S) -> linear -> (B, H, Q)
    seq2seq:  x (B, L, I) -> encoder -> state -> decoder over H steps, input = one-hot step k
              (the encoder's state is the decoder's initial state) -> (B, H, S) -> linear -> (B, H, Q)

Q is the number of quantiles (1 for a point forecast). Quantile outputs are sorted along Q so the
levels never cross (Chernozhukov et al. 2010: sorting a crossing estimate only brings it closer).
The decoder is not autoregressive: it never reads its own forecasts, so there is no train/test
mismatch of teacher forcing, and all steps are trained at once.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .. import layers

CELLS = layers.BY_CELL
DECODERS = ("direct", "seq2seq")


@dataclass
class ForecasterConfig:
    """Everything needed to rebuild a Forecaster (saved beside its weights)."""
    input_size: int
    horizon: int
    cell: str = "gru"
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0
    quantiles: tuple[float, ...] = field(default_factory=tuple)   # () -> one point forecast
    decoder: str = "direct"

    def __post_init__(self):
        self.quantiles = tuple(float(q) for q in self.quantiles)
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}; expected one of {sorted(CELLS)}")
        if self.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {self.decoder!r}; expected one of {DECODERS}")
        if any(not 0 < q < 1 for q in self.quantiles) or list(self.quantiles) != sorted(set(self.quantiles)):
            raise ValueError(f"quantiles must be increasing and inside (0, 1), got {self.quantiles}")

    def to_dict(self) -> dict:
        return asdict(self)


class Forecaster(nn.Module):
    def __init__(self, config: ForecasterConfig):
        super().__init__()
        c = self.config = config
        self.outputs = max(1, len(c.quantiles))
        self.encoder = CELLS[c.cell](c.hidden_size, input_size=c.input_size, num_layers=c.num_layers,
                                     dropout=c.dropout, return_state=True)
        self.dropout = nn.Dropout(c.dropout)
        if c.decoder == "direct":
            self.head = nn.Linear(self.encoder.output_size, c.horizon * self.outputs)
        else:
            self.decoder = CELLS[c.cell](c.hidden_size, input_size=c.horizon, num_layers=c.num_layers,
                                         dropout=c.dropout, return_sequences=True)
            self.head = nn.Linear(self.decoder.output_size, self.outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, L, I) -> forecasts (B, H, Q), sorted along Q."""
        last, state = self.encoder(x)                                          # (B, S), state
        c = self.config
        if c.decoder == "direct":
            out = self.head(self.dropout(last)).view(len(x), c.horizon, self.outputs)
        else:
            steps = torch.eye(c.horizon, dtype=x.dtype, device=x.device).expand(len(x), -1, -1)   # (B, H, H)
            out = self.head(self.dropout(self.decoder(steps, state)))          # (B, H, Q)
        return out.sort(dim=-1).values if self.outputs > 1 else out

    def point(self, out: torch.Tensor) -> torch.Tensor:
        """The point forecast (B, H) of an output: the median (or the quantile nearest it), or the one output."""
        if self.outputs == 1:
            return out[..., 0]
        q = torch.tensor(self.config.quantiles)
        return out[..., int((q - 0.5).abs().argmin())]


def pinball_loss(out: torch.Tensor, target: torch.Tensor, quantiles: tuple[float, ...]) -> torch.Tensor:
    """Mean quantile (pinball) loss of out (B, H, Q) against target (B, H): for level q and error
    e = y - f, q * e if e >= 0 else (q - 1) * e (Koenker & Bassett 1978). Level 0.5 is half the MAE."""
    q = torch.tensor(quantiles, dtype=out.dtype, device=out.device)         # (Q,)
    e = target.unsqueeze(-1) - out                                          # (B, H, Q)
    return torch.maximum(q * e, (q - 1) * e).mean()
