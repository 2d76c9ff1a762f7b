"""Metrics averaged over an epoch, and the history of evaluations saved as CSV, JSON and PNG."""
from __future__ import annotations

import csv
import json
import math
import warnings
from pathlib import Path


class Mean:
    """Running means of the loss and metrics, weighted by items (tokens, sequences)."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.items = 0
        self.steps = 0

    def add(self, n: int, loss: float, metrics: dict[str, float]) -> None:
        for k, v in {"loss": loss, **metrics}.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v) * n
        self.items += n
        self.steps += 1

    def result(self, loss_metrics=()) -> dict[str, float]:
        """The means, plus perplexity = exp(loss) and bits per character = loss / ln 2 when asked."""
        out = {k: v / max(self.items, 1) for k, v in self.sums.items()}
        if "loss" in out:
            if "perplexity" in loss_metrics:
                out["perplexity"] = math.exp(min(out["loss"], 700.0))
            if "bpc" in loss_metrics:
                out["bpc"] = out["loss"] / math.log(2)
        return out

    def to_dict(self) -> dict:
        return {"sums": self.sums, "items": self.items, "steps": self.steps}

    def load_dict(self, d: dict) -> None:
        self.sums, self.items, self.steps = dict(d["sums"]), d["items"], d["steps"]


PANELS_PER_ROW = 4


class History:
    """One row per evaluation: epoch, step, time, lr, the training means and ``val_`` metrics."""

    def __init__(self, rows: list[dict] | None = None):
        self.rows: list[dict] = rows or []

    def append(self, row: dict) -> None:
        self.rows.append(row)

    def column(self, key: str) -> list:
        return [r.get(key) for r in self.rows]

    def keys(self) -> list[str]:
        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        return keys

    def save(self, out_dir, plot: bool = False) -> None:
        """history.csv and history.json in out_dir, and history.png if ``plot``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "history.json").write_text(json.dumps(self.rows, indent=1))
        with open(out / "history.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, self.keys())
            writer.writeheader()
            writer.writerows(self.rows)
        if plot:
            self.plot(out / "history.png")

    def plot(self, path) -> bool:
        """Training and validation curves, one panel per metric; False (with a warning) without matplotlib."""
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            warnings.warn("matplotlib is not installed, so no history.png (pip install 'rnnkit[plot]')")
            return False
        skip = {"epoch", "step", "time", "lr", "clipped"}   # gradient columns: grad_norms.png (gradlog)
        names = [k for k in self.keys() if k not in skip and not k.startswith(("val_", "grad_norm"))]
        names += [k[4:] for k in self.keys() if k.startswith("val_") and k[4:] not in names]
        cols = min(max(len(names), 1), PANELS_PER_ROW)
        rows = -(-max(len(names), 1) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.5 * rows), squeeze=False)
        for ax in axes.flat[len(names):]:
            ax.set_visible(False)
        steps = self.column("step")
        for ax, name in zip(axes.flat, names):
            for key, label in ((name, "train"), ("val_" + name, "validation")):
                pts = [(s, v) for s, v in zip(steps, self.column(key)) if v is not None]
                if pts:
                    ax.plot(*zip(*pts), marker="o", markersize=3, label=label)
            ax.set_xlabel("update")
            ax.set_title(name)
            ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return True
