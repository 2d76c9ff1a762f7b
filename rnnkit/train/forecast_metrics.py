"""Forecast accuracy: MAE, RMSE, MASE, sMAPE and interval coverage, written once for every method.

``actual`` and ``forecast`` are arrays of the same shape, usually (origins, horizon) from a rolling-origin
evaluation; every error is pooled over all of them. Definitions (Hyndman & Koehler 2006; Makridakis 1993):

    MAE   = mean |y - f|
    RMSE  = sqrt(mean (y - f)^2)
    MASE  = MAE / mean_{t >= m} |y_t - y_{t-m}|     the denominator is the in-sample (training history)
                                                    MAE of the seasonal naive forecast with season m
    sMAPE = 200 * mean |y - f| / (|y| + |f|)        in percent, 0..200; a term with y = f = 0 counts 0
    coverage = the fraction of y inside [lo, hi]

scikit-learn has MAE and RMSE but not MASE or sMAPE, and is no dependency of rnnkit: these few lines are ours.
"""
from __future__ import annotations

import numpy as np


def mae(actual, forecast) -> float:
    return float(np.mean(np.abs(np.asarray(actual) - np.asarray(forecast))))


def rmse(actual, forecast) -> float:
    return float(np.sqrt(np.mean((np.asarray(actual) - np.asarray(forecast)) ** 2)))


def mase_scale(history, season: int) -> float:
    """In-sample MAE of the seasonal naive forecast (lag ``season``; lag 1 if the history is too short)."""
    history = np.asarray(history, dtype=np.float64)
    m = season if len(history) > season else 1
    scale = float(np.mean(np.abs(history[m:] - history[:-m])))
    if not scale > 0:
        raise ValueError(f"the history is constant at lag {m}: MASE is undefined")
    return scale


def mase(actual, forecast, scale: float) -> float:
    return mae(actual, forecast) / scale


def smape(actual, forecast) -> float:
    a, f = np.asarray(actual, dtype=np.float64), np.asarray(forecast, dtype=np.float64)
    denominator = np.abs(a) + np.abs(f)
    terms = np.divide(np.abs(a - f), denominator, out=np.zeros_like(denominator), where=denominator > 0)
    return float(200 * np.mean(terms))


def coverage(actual, lo, hi) -> float:
    a = np.asarray(actual)
    return float(np.mean((np.asarray(lo) <= a) & (a <= np.asarray(hi))))


def scores(actual, forecast, scale: float, interval=None) -> dict[str, float]:
    """All the metrics of one method; ``interval``: (lo, hi) adds coverage."""
    row = {"mae": mae(actual, forecast), "rmse": rmse(actual, forecast), "mase": mase(actual, forecast, scale),
           "smape": smape(actual, forecast)}
    if interval is not None:
        row["coverage"] = coverage(actual, *interval)
    return row
