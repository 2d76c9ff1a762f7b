"""The classical forecasts an RNN must beat: naive, seasonal naive, ETS and ARIMA (statsmodels).

Each baseline is fitted once on the history before the test part (``fit(history)``) and then forecasts
``horizon`` steps from every test origin with its parameters fixed, filtering the observations up to the
origin (``rolling(y, origins, horizon)`` -> (N, horizon)): the same windows the RNN is scored on. They
read the target only; covariates are the RNN's advantage.

* naive: the last value.  seasonal naive: the value one season before.
* ETS (statsmodels ``ETSModel``): error, trend (none, additive, damped) and seasonality (none, additive,
  multiplicative for positive data) chosen by AICc, as Hyndman et al.'s ``ets()``; for seasons over 24
  the initial states come from the heuristic of Hyndman et al. (2008) instead of the likelihood.
* ARIMA (statsmodels ``ARIMA``): differencing d by repeated KPSS tests, seasonal differencing D when the
  STL seasonal strength exceeds 0.64, then a stepwise search by AIC over p, q <= 3 and seasonal P, Q <= 1
  (the rules of Hyndman & Khandakar's ``auto.arima``); a constant or drift when d + D <= 1.
  Seasonal AR/MA terms only for seasons up to 24 (a weekly season of 52 makes every fit very slow).
"""
from __future__ import annotations

import contextlib
import itertools
import warnings

import numpy as np

from ..errors import UserError

MAX_SEASONAL_TERMS = 24
MAX_ORDER = 3          # p, q <= 3 in the stepwise search


def one_blas_thread():
    """A context in which OpenBLAS runs one thread. statsmodels' state-space fits multiply tiny matrices;
    with OpenBLAS's thread pool on a busy 2-core machine an ARIMA search took 19 s of CPU instead of 0.4 s
    (measured), so the baselines run single-threaded (threadpoolctl, part of the forecast extra)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:   # only slower
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def statsmodels_tsa():
    try:
        import statsmodels.tsa.api   # noqa: F401
    except ImportError:
        raise UserError("the ETS and ARIMA baselines need statsmodels: pip install 'rnnkit[forecast]'") from None


class Naive:
    name = "naive"

    def fit(self, history: np.ndarray) -> "Naive":
        return self

    def rolling(self, y: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
        return np.repeat(y[np.asarray(origins) - 1][:, None], horizon, axis=1)


class SeasonalNaive:
    """f(o + h) = y(o + h - m * ceil((h + 1) / m)): the last observed value at the same point of the season."""
    name = "seasonal_naive"

    def __init__(self, season: int):
        self.season = max(1, season)

    def fit(self, history: np.ndarray) -> "SeasonalNaive":
        return self

    def rolling(self, y: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
        m, h = self.season, np.arange(horizon)
        lag = m * (h // m + 1)                                   # (H,)
        return y[np.asarray(origins)[:, None] + h - lag]


class ETS:
    name = "ets"

    def __init__(self, season: int):
        self.season = season
        self.spec, self.params, self.description = None, None, ""

    def specs(self, history):
        positive = bool(np.all(history > 0))
        seasons = [None]
        if self.season > 1 and len(history) >= 2 * self.season + 2:
            seasons += ["add", "mul"] if positive else ["add"]
        for error, (trend, damped), seasonal in itertools.product(
                ["add", "mul"] if positive else ["add"], [(None, False), ("add", False), ("add", True)], seasons):
            long = seasonal and self.season > MAX_SEASONAL_TERMS   # 52 initial weekly states: start heuristically
            yield dict(error=error, trend=trend, damped_trend=damped, seasonal=seasonal,
                       seasonal_periods=self.season if seasonal else None,
                       initialization_method="heuristic" if long else "estimated")

    def fit(self, history: np.ndarray) -> "ETS":
        statsmodels_tsa()
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel
        best = None
        for spec in self.specs(history):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    res = ETSModel(history, **spec).fit(disp=False, maxiter=500)
                except (ValueError, np.linalg.LinAlgError):
                    continue
            if np.isfinite(res.aicc) and (best is None or res.aicc < best[0]):
                best = (res.aicc, spec, res.params)
        if best is None:
            raise UserError("no ETS model could be fitted to the training history")
        _, self.spec, self.params = best
        s = self.spec
        trend = "N" if not s["trend"] else "Ad" if s["damped_trend"] else "A"
        self.description = (f"ETS({s['error'][0].upper()},{trend},"
                            f"{(s['seasonal'] or 'N')[0].upper()})")
        return self

    def rolling(self, y: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel
        end = int(np.max(origins))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = ETSModel(y[:end], **self.spec).smooth(self.params)
            return np.stack([res.predict(start=o, end=o + horizon - 1, dynamic=0) if o < end
                             else res.forecast(horizon) for o in origins])


class ARIMA:
    name = "arima"

    def __init__(self, season: int):
        self.season = season
        self.result, self.description = None, ""

    def differencing(self, history: np.ndarray) -> tuple[int, int]:
        """(d, D): D = 1 for a strong season (STL strength > 0.64), then d by KPSS at 5% (up to 2)."""
        from statsmodels.tsa.seasonal import STL
        from statsmodels.tsa.stattools import kpss
        m, D, x = self.season, 0, history
        if m > 1 and len(history) >= 3 * m:
            stl = STL(history, period=m, robust=True).fit()
            strength = 1 - np.var(stl.resid) / np.var(stl.resid + stl.seasonal)
            if strength > 0.64:
                D, x = 1, history[m:] - history[:-m]
        d = 0
        while d < 2 and len(x) > 10:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p_value = kpss(x, regression="c", nlags="auto")[1]
            if p_value >= 0.05:
                break
            d, x = d + 1, np.diff(x)
        return d, D

    def fit(self, history: np.ndarray) -> "ARIMA":
        """Hyndman & Khandakar's stepwise search: four starting models, then moves of p, q, P or Q by one
        while the AIC improves."""
        statsmodels_tsa()
        from statsmodels.tsa.arima.model import ARIMA as Model
        d, D = self.differencing(history)
        m = self.season
        seasonal = 1 < m <= MAX_SEASONAL_TERMS
        trend = "c" if d + D == 0 else "t" if d + D == 1 else "n"
        fits = {}

        def aic(p, q, P, Q):
            if (p, q, P, Q) not in fits:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        res = Model(history, order=(p, d, q), seasonal_order=(P, D, Q, m if D or P or Q else 0),
                                    trend=trend).fit(cov_type="none")   # no standard errors: faster
                        fits[p, q, P, Q] = (res.aic if np.isfinite(res.aic) else np.inf, res)
                    except (ValueError, np.linalg.LinAlgError):
                        fits[p, q, P, Q] = (np.inf, None)
            return fits[p, q, P, Q][0]

        top = 1 if seasonal else 0
        starts = [(2, 2, top, top), (0, 0, 0, 0), (1, 0, top, 0), (0, 1, 0, top)]
        current = min(starts, key=lambda k: aic(*k))
        moves = [(i, s) for i in range(4) for s in (-1, 1)] + [((0, 1), s) for s in (-1, 1)]
        improved = True
        while improved:
            improved = False
            for where, sign in moves:
                k = list(current)
                for i in (where if isinstance(where, tuple) else (where,)):
                    k[i] += sign
                k = tuple(k)
                if min(k) < 0 or max(k[:2]) > MAX_ORDER or max(k[2:]) > top:
                    continue
                if aic(*k) < aic(*current):
                    current, improved = k, True
        if fits[current][1] is None:
            raise UserError("no ARIMA model could be fitted to the training history")
        self.result = fits[current][1]
        p, q, P, Q = current
        self.description = (f"ARIMA({p},{d},{q})" + (f"({P},{D},{Q})[{m}]" if P or D or Q else "")
                            + {"c": " with constant", "t": " with drift", "n": ""}[trend])
        self.fits = len(fits)
        return self

    def rolling(self, y: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
        end = int(np.max(origins))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = self.result.apply(y[:end])     # the fitted parameters, filtered over the data up to the last origin
            return np.stack([res.predict(start=o, end=o + horizon - 1, dynamic=0) if o < end
                             else res.forecast(horizon) for o in origins])


BASELINES = ("naive", "seasonal_naive", "ets", "arima")


def make_baselines(season: int, names=BASELINES) -> list:
    """The baselines called ``names``, in the order of BASELINES."""
    made = {"naive": Naive, "seasonal_naive": lambda: SeasonalNaive(season), "ets": lambda: ETS(season),
            "arima": lambda: ARIMA(season)}
    return [made[n]() for n in BASELINES if n in names]
