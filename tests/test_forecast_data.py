"""Forecasting data and arithmetic: metrics against hand-computed values, the reader's checks and gap
filling, time-ordered splits, windows, and the baselines' rolling forecasts."""
import math

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("statsmodels")

from rnnkit.data.timeseries import read_series, season_of   # noqa: E402
from rnnkit.data.windows import Scaler, Split, windows   # noqa: E402
from rnnkit.errors import UserError   # noqa: E402
from rnnkit.models.baselines import ARIMA, ETS, Naive, SeasonalNaive, one_blas_thread   # noqa: E402
from rnnkit.train import forecast_metrics as fm   # noqa: E402


# ---- metrics ---------------------------------------------------------------------------------------

def test_metrics_by_hand():
    actual, forecast = np.array([1.0, 2, 3, 4]), np.array([2.0, 2, 2, 6])     # errors 1, 0, 1, 2
    assert fm.mae(actual, forecast) == pytest.approx(1.0)
    assert fm.rmse(actual, forecast) == pytest.approx(math.sqrt(6 / 4))
    # sMAPE terms: 1/3, 0, 1/5, 2/10
    assert fm.smape(actual, forecast) == pytest.approx(200 * (1 / 3 + 0 + 0.2 + 0.2) / 4)
    # seasonal naive in-sample errors at lag 2 of [1, 3, 2, 5, 4]: |2-1|, |5-3|, |4-2| -> mean 5/3
    scale = fm.mase_scale([1, 3, 2, 5, 4], season=2)
    assert scale == pytest.approx(5 / 3)
    assert fm.mase(actual, forecast, scale) == pytest.approx(0.6)
    assert fm.mase_scale([1, 3, 2], season=5) == pytest.approx(1.5)        # too short for lag 5: lag 1
    assert fm.coverage([1, 2, 3, 4], [0, 2.5, 3, 3], [1, 3, 4, 3.5]) == pytest.approx(0.5)
    assert fm.smape([0.0, 1.0], [0.0, 1.0]) == 0.0                          # 0/0 counts 0
    row = fm.scores(actual, forecast, scale, interval=(forecast - 1, forecast + 1))
    assert set(row) == {"mae", "rmse", "mase", "smape", "coverage"} and row["coverage"] == pytest.approx(0.75)
    with pytest.raises(ValueError):
        fm.mase_scale([2, 2, 2, 2], season=1)


# ---- reading and cleaning ---------------------------------------------------------------------------

def monthly(n=60, start="2000-01-01", seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return pd.DataFrame({"date": pd.date_range(start, periods=n, freq="MS"),
                         "y": 10 + 0.1 * t + 2 * np.sin(2 * np.pi * t / 12) + 0.1 * rng.standard_normal(n),
                         "x": rng.standard_normal(n)})


def write(tmp_path, frame, name="s.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


def test_reads_a_regular_csv(tmp_path):
    s = read_series(write(tmp_path, monthly()), target="y", covariates=("x",))
    assert (s.freq, s.season, s.columns, s.values.shape, s.notes) == ("MS", 12, ("y", "x"), (60, 2), [])
    assert s.future_times(2) == ["2005-01-01", "2005-02-01"]


def test_rows_are_sorted_and_gaps_interpolated_with_a_count(tmp_path):
    frame = monthly()
    truth = frame["y"].to_numpy().copy()
    frame.loc[[10, 11, 12], "y"] = np.nan
    frame.loc[30, "y"] = np.inf
    frame = frame.drop(index=40).sample(frac=1, random_state=0)          # a missing month, rows shuffled
    s = read_series(write(tmp_path, frame), target="y")
    assert len(s) == 60 and np.isfinite(s.values).all()
    assert np.allclose(s.values[10:13, 0], np.linspace(truth[9], truth[13], 5)[1:4])   # linear in between
    assert any("1 missing time steps inserted" in n for n in s.notes)
    assert any("5 missing values of 'y' interpolated (longest run 3)" in n for n in s.notes)


def test_edge_rows_without_target_are_dropped(tmp_path):
    frame = monthly()
    frame.loc[[0, 1, 59], "y"] = np.nan
    s = read_series(write(tmp_path, frame), target="y")
    assert len(s) == 57 and s.time_strings(slice(0, 1)) == ["2000-03-01"]
    assert any("3 rows before the first or after the last value" in n for n in s.notes)


def test_numeric_time_column(tmp_path):
    frame = pd.DataFrame({"year": [1900, 1901, 1903, 1904], "v": [1.0, 2, 4, 5]})
    s = read_series(write(tmp_path, frame))
    assert s.freq == 1.0 and np.allclose(s.values[:, 0], [1, 2, 3, 4, 5]) and s.future_times(1) == ["1905"]


@pytest.mark.parametrize("change,kwargs,message", [
    (lambda f: f.assign(y=f["y"].astype(object).where(f.index != 7, "12,5a")), {},
     r"column 'y' has a non-numeric value '12,5a' \(data row 8, line 9"),
    (lambda f: f.assign(date=f["date"].where(f.index != 5, pd.Timestamp("2000-06-17"))), {},
     "cannot infer a regular frequency|irregular timestamps"),
    (lambda f: f.assign(date=f["date"].where(f.index != 5, pd.Timestamp("2000-06-17"))), {"freq": "MS"},
     "irregular timestamps: 2000-06-17.* not on the MS grid"),
    (lambda f: f.assign(y=f["y"].where((f.index < 20) | (f.index > 33))), {},
     r"column 'y' has 14 missing values in a row from 2001-09-01 \(more than --max-gap 12"),
    (lambda f: pd.concat([f, f.iloc[[3]]]), {}, "timestamp 2000-04-01.* appears more than once"),
    (lambda f: f, {"target": "nosuch"}, "has no column 'nosuch'; its columns are: date, y, x"),
    (lambda f: f.assign(y=np.nan), {}, "the target column 'y' has no values"),
    (lambda f: f.iloc[:0], {}, "has no rows"),
])
def test_bad_tables_are_one_line_errors(tmp_path, change, kwargs, message):
    with pytest.raises(UserError, match=message) as e:
        read_series(write(tmp_path, change(monthly())), **{"target": "y", **kwargs})
    assert "\n" not in str(e.value)


def test_off_grid_timestamps_resample_into_periods(tmp_path):
    days = pd.DataFrame({"date": pd.date_range("2000-01-01", periods=90, freq="D")[::3], "y": np.arange(30.0)})
    s = read_series(write(tmp_path, days), freq="MS", resample=True)
    assert s.freq == "MS" and len(s) == 3 and s.values[0, 0] == pytest.approx(np.mean(np.arange(11)))


def test_season_of_frequencies():
    assert [season_of(f) for f in ("MS", "ME", "QS-OCT", "W-SAT", "D", "h", "YS", "2h", 1.0)] == \
        [12, 12, 4, 52, 7, 24, 1, 12, 1]


# ---- splits, scaling, windows ---------------------------------------------------------------------

def test_splits_are_in_time_order_and_windows_stay_in_their_part():
    split = Split.make(100, lookback=12, horizon=6, test_fraction=0.1, val_fraction=0.1)
    assert (split.train, split.valid, split.total) == (80, 90, 100)
    train, valid, test = (split.origins(p, 12, 6) for p in ("train", "valid", "test"))
    assert train.min() == 12 and train.max() + 6 == 80                   # targets inside training
    assert valid.min() == 80 and valid.max() + 6 == 90                   # targets inside validation
    assert list(test) == list(range(90, 95))                             # every origin whose horizon fits
    with pytest.raises(UserError, match="fewer than lookback \\+ horizon = 30 \\+ 12"):
        Split.make(40, 30, 12, 0.1, 0.1)
    with pytest.raises(UserError, match="only 16 are left for training"):
        Split.make(40, 12, 12, 0.1, 0.1)


def test_scaler_and_constant_series():
    values = np.array([[1.0, 5.0], [3.0, 5.0]])
    with pytest.raises(UserError, match="column 'x' is constant .*drop it from --covariates"):
        Scaler.fit(values, ("y", "x"))
    with pytest.raises(UserError, match="column 'y' is constant"):
        Scaler.fit(values[:, ::-1], ("y", "x"))
    s = Scaler.fit(np.array([[1.0], [3.0]]), ("y",))
    assert np.allclose(s.transform(np.array([[2.0]])), 0) and s.target_inverse(np.array(1.0)) == pytest.approx(3.0)


def test_windows_relative_to_the_last_observation():
    z = np.arange(20.0)[:, None] * np.array([[1.0, -1.0]])              # target 0..19, covariate -t
    x, y, level = windows(z, np.array([5, 10]), lookback=3, horizon=2, relative=True)
    assert x.shape == (2, 3, 2) and np.allclose(level, [4, 9])
    assert np.allclose(x[0, :, 0], [-2, -1, 0]) and np.allclose(x[0, :, 1], [-2, -3, -4])
    assert np.allclose(y, [[1, 2], [1, 2]])
    x, y, level = windows(z, np.array([20]), 3, 2, relative=False)      # after the end: no targets
    assert y is None and np.allclose(x[0, :, 0], [17, 18, 19]) and level[0] == 0


# ---- baselines -------------------------------------------------------------------------------------

def test_naive_and_seasonal_naive_by_hand():
    y = np.arange(20.0)
    assert np.allclose(Naive().rolling(y, np.array([10, 15]), 3), [[9, 9, 9], [14, 14, 14]])
    # season 4 from origin 10: steps 10..15 take 6, 7, 8, 9, then 6, 7 again
    assert np.allclose(SeasonalNaive(4).rolling(y, np.array([10]), 6), [[6, 7, 8, 9, 6, 7]])


@pytest.mark.parametrize("baseline", [ETS, ARIMA])
def test_rolling_forecasts_equal_a_forecast_from_each_origin(baseline):
    """One filtering pass with dynamic prediction equals refiltering the data up to each origin."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    y = monthly(72, seed=1)["y"].to_numpy()
    with one_blas_thread():
        b = baseline(12).fit(y[:60])
        origins = np.array([60, 63, 66])                                  # 66 + 6 runs past the last origin
        got = b.rolling(y, origins, 6)
    for row, o in zip(got, origins):
        ref = (ETSModel(y[:o], **b.spec).smooth(b.params).forecast(6) if baseline is ETS
               else b.result.apply(y[:o]).forecast(6))
        assert np.allclose(row, ref)
    assert b.description
