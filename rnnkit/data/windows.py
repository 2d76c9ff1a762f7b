"""Forecasting windows: time-ordered splits, scaling fitted on the training part, lookback/horizon windows.

A series of T rows is split strictly in time order::

    rows [0, train)        training: every window's inputs AND targets lie here
    rows [train, valid)    validation: targets here, inputs may reach back into training
    rows [valid, T)        test, at the end: one forecast from every origin whose horizon fits (rolling origin)

A window at *origin* o reads rows [o - lookback, o) and predicts the target at rows [o, o + horizon).
The scaler is fitted on rows [0, train) only, so nothing from validation or test leaks into the inputs.
With ``relative=True`` each window's scaled target is also shifted by its own last input value (the
window's level): the network predicts the change from the last observation, which carries a trend
beyond the range seen in training. The shift uses only the window's past, so it leaks nothing either.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError


@dataclass(frozen=True)
class Split:
    """Row boundaries: training [0, train), validation [train, valid), test [valid, total)."""
    train: int
    valid: int
    total: int

    @classmethod
    def make(cls, total: int, lookback: int, horizon: int, test_fraction: float, val_fraction: float,
             name: str = "the series") -> "Split":
        """The last ``test_fraction`` is test, the ``val_fraction`` before it validation (each at least one
        horizon); training keeps the rest and must hold at least one window plus a few more."""
        n_test = max(horizon, int(round(total * test_fraction)))
        n_val = max(horizon, int(round(total * val_fraction)))
        train = total - n_test - n_val
        need = lookback + horizon
        if total < need:
            raise UserError(f"{name} has {total} time steps, fewer than lookback + horizon = {lookback} + {horizon}; "
                            "pass a longer series or lower --lookback / --horizon")
        if train < need + 4:
            raise UserError(f"{name} has {total} time steps: after the test ({n_test}) and validation ({n_val}) parts "
                            f"only {train} are left for training, fewer than lookback + horizon + 4 = {need + 4}; "
                            "pass a longer series or lower --lookback / --horizon")
        return cls(train, train + n_val, total)

    def origins(self, part: str, lookback: int, horizon: int) -> np.ndarray:
        """Origins whose ``horizon`` targets all lie in ``part`` ("train", "valid" or "test"); for the test part
        that is every step whose horizon fits (rolling origin)."""
        start, end = {"train": (lookback, self.train), "valid": (self.train, self.valid),
                      "test": (self.valid, self.total)}[part]
        return np.arange(max(start, lookback), end - horizon + 1)


@dataclass
class Scaler:
    """Per-column standardization ``(x - center) / scale`` with statistics of the training rows only."""
    center: np.ndarray   # (C,)
    scale: np.ndarray    # (C,)

    @classmethod
    def fit(cls, values: np.ndarray, columns: tuple[str, ...]) -> "Scaler":
        center, scale = values.mean(0), values.std(0)
        for name, s, c in zip(columns, scale, center):
            if not s > 1e-12 * max(1.0, abs(c)):
                raise UserError(f"column {name!r} is constant ({c:g}) in the training part: nothing to learn "
                                "from it" + ("; drop it from --covariates" if name != columns[0] else ""))
        return cls(center, scale)

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.center) / self.scale

    def target_inverse(self, scaled: np.ndarray) -> np.ndarray:
        return scaled * self.scale[0] + self.center[0]

    def to_dict(self) -> dict:
        return {"center": self.center.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Scaler":
        return cls(np.asarray(d["center"], dtype=np.float64), np.asarray(d["scale"], dtype=np.float64))


def windows(scaled: np.ndarray, starts: np.ndarray, lookback: int, horizon: int, relative: bool):
    """Inputs (N, lookback, C), targets (N, horizon) or None when the horizon runs past the end, and the
    level (N,) each window is shifted by (0 unless ``relative``), all float32; column 0 is the target."""
    starts = np.asarray(starts)
    rows = starts[:, None] + np.arange(-lookback, 0)                 # (N, L)
    x = scaled[rows].astype(np.float32)                              # (N, L, C)
    level = x[:, -1, 0].copy() if relative else np.zeros(len(starts), np.float32)
    x[:, :, 0] -= level[:, None]
    y = None
    if len(starts) and starts.max() + horizon <= len(scaled):
        y = scaled[starts[:, None] + np.arange(horizon), 0].astype(np.float32) - level[:, None]   # (N, H)
    return x, y, level
