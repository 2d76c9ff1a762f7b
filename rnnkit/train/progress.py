"""What the user sees while training: a tqdm bar per epoch, or plain lines, or nothing."""
from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm


def fmt(row: dict) -> str:
    """A history row as 'loss 0.123  acc 0.9  val_loss 0.2 ...' (no epoch/step/time)."""
    skip = {"epoch", "step", "time"}
    return "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items() if k not in skip)


class Progress:
    """One epoch's progress: loss, first metric, items per second and ETA (verbose 1 only)."""

    def __init__(self, verbose: int, epoch: int, epochs: int, total: int | None, done: int = 0):
        self.verbose, self.start, self.items = verbose, time.monotonic(), 0
        self.bar = None
        if verbose == 1:
            self.bar = tqdm(total=total, initial=done, desc=f"epoch {epoch + 1}/{epochs}", leave=False,
                            dynamic_ncols=True, file=sys.stderr, unit="batch")

    def update(self, items: int, means: dict[str, float]) -> None:
        self.items += items
        if self.bar is not None:
            rate = self.items / max(time.monotonic() - self.start, 1e-9)
            shown = {k: f"{v:.4g}" for k, v in list(means.items())[:2]}
            self.bar.set_postfix(**shown, items_s=f"{rate:.0f}", refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
