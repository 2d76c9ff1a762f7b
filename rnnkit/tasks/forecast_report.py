"""The forecast task's report: the metrics table (text and Markdown), the forecasts (CSV), the plot (PNG).

Files in OUT: forecast.json (the report), forecast.md (the table), forecast.csv (every test forecast: origin,
step, actual value, the RNN and each baseline), forecast.png (history, test part, RNN forecasts with their
80% interval, and the best baseline's forecasts, from origins one horizon apart).
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..train.checkpoint import atomic_write

METRICS = ("mase", "mae", "rmse", "smape", "coverage")
HEADERS = {"mase": "MASE", "mae": "MAE", "rmse": "RMSE", "smape": "sMAPE %", "coverage": "80% coverage"}


@dataclass
class Evaluation:
    """A rolling-origin evaluation: ``report`` is JSON-able (the table and how it was made); the arrays
    hold what it was computed from."""
    report: dict
    series: object                   # rnnkit.data.timeseries.Series
    starts: np.ndarray               # (N,) test origins (row of the first forecast step)
    actual: np.ndarray               # (N, H)
    forecasts: dict                  # method -> (N, H)
    interval: tuple | None           # the RNN's (lo, hi), each (N, H), or None


def check_matplotlib() -> None:
    try:
        import matplotlib   # noqa: F401
    except ImportError:
        raise UserError("the plot needs matplotlib: pip install 'rnnkit[plot]', or pass --no-plot") from None


def rows(report: dict) -> list[tuple[str, list[str]]]:
    table = report["metrics"]
    metrics = [m for m in METRICS if any(m in row for row in table.values())]
    lines = [(method, [f"{row[m]:.4g}" if m in row else "" for m in metrics]) for method, row in table.items()]
    return metrics, lines


def table(report: dict) -> str:
    """The metrics as aligned text, one method per line, and which baseline was best."""
    metrics, lines = rows(report)
    header = f"{'method':<16}" + "".join(f"{HEADERS[m]:>14}" for m in metrics) + "   model"
    body = [f"{method:<16}" + "".join(f"{v:>14}" for v in values) + f"   {report['methods'][method]}"
            for method, values in lines]
    verdict = ("the RNN has the lowest MASE" if report["rnn_beats_all"] else
               f"the RNN does NOT beat every baseline (best baseline: {report['best_baseline']})")
    return "\n".join([f"{report['series']}: horizon {report['horizon']}, {report['split']['test_origins']} test "
                      f"origins (rolling), MASE scaled by the in-sample seasonal naive MAE "
                      f"({report['mase_scale']:.4g}, season {report['season']})", header, *body, verdict])


def markdown(report: dict) -> str:
    metrics, lines = rows(report)
    out = [f"| method | {' | '.join(HEADERS[m] for m in metrics)} | model |",
           "|" + "---|" * (len(metrics) + 2)]
    out += [f"| {method} | {' | '.join(values)} | {report['methods'][method]} |" for method, values in lines]
    return "\n".join(out) + "\n"


def forecasts_csv(result: Evaluation) -> str:
    series, h = result.series, result.actual.shape[1]
    methods = list(result.forecasts)
    buffer = io.StringIO()
    w = csv.writer(buffer)
    extra = ["rnn_p10", "rnn_p90"] if result.interval is not None else []
    w.writerow(["origin", "time", "step", "actual", *methods, *extra])
    times = series.time_strings()
    for i, start in enumerate(result.starts):
        for k in range(h):
            values = [result.forecasts[m][i, k] for m in methods]
            if result.interval is not None:
                values += [result.interval[0][i, k], result.interval[1][i, k]]
            w.writerow([times[start - 1], times[start + k], k + 1, f"{result.actual[i, k]:.6g}",
                        *(f"{v:.6g}" for v in values)])
    return buffer.getvalue()


def write(result: Evaluation, out: Path, plot: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "forecast.json", (json.dumps(result.report, indent=1) + "\n").encode())
    atomic_write(out / "forecast.md", markdown(result.report).encode())
    atomic_write(out / "forecast.csv", forecasts_csv(result).encode())
    if plot:
        write_png(result, out / "forecast.png")


def write_png(result: Evaluation, path: Path) -> None:
    atomic_write(path, plot_png(result))


def plot_png(result: Evaluation) -> bytes:
    """History (the last few seasons), the test part, and forecasts from origins one horizon apart."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    r, series, h = result.report, result.series, result.actual.shape[1]
    y, first = series.values[:, 0], int(result.starts[0])
    begin = max(0, first - max(4 * r["lookback"], 3 * h))
    t = np.asarray(series.time if not hasattr(series.time, "to_numpy") else series.time.to_numpy())
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(t[begin:first], y[begin:first], color="0.3", lw=1, label="history")
    ax.plot(t[first - 1:], y[first - 1:], color="black", lw=1.5, label="test part")
    best = r["best_baseline"]
    for n, i in enumerate(range(0, len(result.starts), h)):
        steps = t[result.starts[i] + np.arange(h)]
        if result.interval is not None:
            ax.fill_between(steps, result.interval[0][i], result.interval[1][i], color="tab:blue", alpha=0.2,
                            lw=0, label="RNN 80% interval" if n == 0 else None)
        ax.plot(steps, result.forecasts["rnn"][i], color="tab:blue", lw=1.5, label="RNN" if n == 0 else None)
        ax.plot(steps, result.forecasts[best][i], color="tab:orange", lw=1.2, ls="--",
                label=f"{best} (best baseline)" if n == 0 else None)
    ax.axvline(t[first], color="0.6", lw=0.8, ls=":")
    m = r["metrics"]
    ax.set_title(f"{r['series']}: {h}-step forecasts from origins {h} apart; MASE RNN {m['rnn']['mase']:.3f}, "
                 f"{best} {m[best]['mase']:.3f}", fontsize=10)
    ax.set_ylabel(series.columns[0])
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()
