"""Time series for forecasting: read a table, put it on a regular time grid, fill gaps, check it.

    series = read_series("sales.csv", target="units", covariates=["price"])   # or a DataFrame
    series.values        # (T, 1 + C) float64, all finite; column 0 is the target
    series.notes         # what cleaning did, for the user: "5 missing values interpolated", ...

What happens to a table, in order (each step documented in its function):
* rows sorted by time; a repeated timestamp is an error;
* the frequency inferred (``pandas.infer_freq`` on runs of rows) or given (``freq``); timestamps are
  placed on that grid, a missing step becomes a missing value; a timestamp off the grid is an error
  unless ``resample`` averages each period;
* a non-numeric cell is an error naming its line; ``inf`` counts as missing;
* missing values inside the series are interpolated linearly (a run longer than ``max_gap``, by
  default one season, is an error); rows before the first and after the last target value are dropped;
  a covariate's edge gaps take the nearest value. Every count goes to ``notes``.
Splitting, scaling and windows live in ``rnnkit.data.windows``; built-in sets in ``rnnkit.data.tsdatasets``.
Needs pandas (it comes with statsmodels, the ``forecast`` extra).
"""
from __future__ import annotations

import sys
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError

TIME_NAMES = ("date", "time", "timestamp", "datetime", "ds", "period", "month", "year", "week", "day")
# periods per "season" for a pandas offset's base name: 12 months a year, 7 days a week, 24 hours a day
SEASONS = {"Y": 1, "A": 1, "Q": 4, "M": 12, "W": 52, "D": 7, "B": 5, "h": 24, "H": 24, "min": 60, "T": 60,
           "s": 60, "S": 60}


def need_pandas():
    """pandas, or a one-line UserError saying what to install."""
    try:
        import pandas
    except ImportError:
        raise UserError("forecasting needs pandas and statsmodels: pip install 'rnnkit[forecast]'") from None
    return pandas


@dataclass
class Series:
    """A regular, gap-free time series: ``values[:, 0]`` is the target, the other columns covariates."""
    name: str
    time: object                      # pandas DatetimeIndex, or a float array for a numeric time column
    freq: str | float                 # a pandas offset alias ("MS", "W-SAT"), or the step of a numeric time
    columns: tuple[str, ...]          # target first
    values: np.ndarray                # (T, 1 + C) float64, finite
    season: int                       # periods per season (12 for monthly data): seasonal naive, MASE, ETS
    time_column: str = "time"
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.values)

    def future_times(self, n: int) -> list[str]:
        """The ``n`` timestamps after the last one, as strings (ISO dates, or numbers)."""
        if isinstance(self.freq, str):
            pd = need_pandas()
            times = pd.date_range(self.time[-1], periods=n + 1, freq=self.freq)[1:]
            return [format_time(t) for t in times]
        return [format_number(self.time[-1] + k * self.freq) for k in range(1, n + 1)]

    def time_strings(self, rows=slice(None)) -> list[str]:
        times = self.time[rows]
        return [format_time(t) for t in times] if isinstance(self.freq, str) else [format_number(t) for t in times]


def format_time(t) -> str:
    return t.strftime("%Y-%m-%d") if (t.hour, t.minute, t.second) == (0, 0, 0) else t.isoformat()


def stamp(t) -> str:
    """A timestamp or numeric time for a message."""
    return format_time(t) if hasattr(t, "strftime") else format_number(t)


def format_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def season_of(freq: str | float) -> int:
    """Periods per season for a frequency: 12 for monthly, 4 quarterly, 52 weekly, 7 daily, 1 otherwise."""
    if not isinstance(freq, str):
        return 1
    pd = need_pandas()
    offset = pd.tseries.frequencies.to_offset(freq)
    base = "".join(c for c in offset.rule_code.split("-")[0] if c.isalpha())
    for key in (base, base.rstrip("SE"), base[:1]):
        if key in SEASONS:
            return SEASONS[key] if offset.n == 1 or SEASONS[key] == 1 else max(1, SEASONS[key] // offset.n)
    return 1


def read_series(source, target: str | None = None, covariates: tuple[str, ...] = (), time: str | None = None,
                freq: str | None = None, resample: bool = False, max_gap: int | None = None,
                season: int | None = None, name: str | None = None) -> Series:
    """A Series from a CSV path ("-": standard input) or a DataFrame (see the module docstring); UserError
    on bad input."""
    pd = need_pandas()
    frame, name = read_frame(source, name)
    time = time or find_time_column(frame, name)
    target = target or find_target(frame, time, name)
    columns = (target, *covariates)
    missing = [c for c in (time, *columns) if c not in frame.columns]
    if missing:
        raise UserError(f"{name} has no column {missing[0]!r}; its columns are: {', '.join(map(str, frame.columns))}")
    if len(set(columns)) != len(columns) or time in columns:
        raise UserError(f"the time, target and covariate columns must be different, got time={time!r}, "
                        f"target={target!r}, covariates={list(covariates)}")
    values = pd.DataFrame({c: numeric_column(frame[c], c, name) for c in columns})
    stamps, numeric_time = parse_times(frame[time], time, name)
    values.index = stamps
    values = values.sort_index()
    if values.index.has_duplicates:
        dup = values.index[values.index.duplicated()][0]
        raise UserError(f"{name}: timestamp {stamp(dup)} appears more than once in column {time!r}; "
                        "one row per time step")
    notes = []
    if numeric_time:
        values, step = numeric_grid(values, time, name, notes)
    else:
        values, step = date_grid(values, freq, resample, time, name, notes)
    season = season or season_of(step)
    values = fill_gaps(values, target, max(3, season) if max_gap is None else max_gap, name, notes)
    array = values.to_numpy(dtype=np.float64)
    assert np.isfinite(array).all()
    index = values.index.to_numpy(dtype=np.float64) if numeric_time else values.index
    return Series(name, index, step, columns, array, season, time, notes)


def read_frame(source, name):
    pd = need_pandas()
    if isinstance(source, pd.DataFrame):
        frame, name = source, name or "the data"
    elif str(source) == "-":
        name = name or "standard input"
        try:
            frame = pd.read_csv(sys.stdin, sep=None, engine="python")
        except pd.errors.EmptyDataError:
            raise UserError("standard input is empty; expected a CSV table with a header row") from None
        except (pd.errors.ParserError, ValueError) as e:
            raise UserError(f"standard input is not a readable CSV table ({str(e).splitlines()[0][:100]})") from None
    else:
        path = Path(source)
        name = name or str(path)
        if not path.is_file():
            raise UserError(f"data file not found: {path}" if not path.exists() else f"{path} is not a file")
        try:
            frame = pd.read_csv(path, sep=None, engine="python")   # sniffs comma, semicolon or tab
        except pd.errors.EmptyDataError:
            raise UserError(f"{path} is empty; expected a CSV file with a header row") from None
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
            raise UserError(f"{path} is not a readable CSV file ({str(e).splitlines()[0][:100]})") from None
    if len(frame) == 0:
        raise UserError(f"{name} has no rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, name


def find_time_column(frame, name) -> str:
    """A column named like a time (date, time, timestamp, ds, year, ...), else the first column."""
    for c in frame.columns:
        if c.lower() in TIME_NAMES:
            return c
    if len(frame.columns) < 2:
        raise UserError(f"{name} needs a time column and a value column; it has only {list(frame.columns)}")
    return frame.columns[0]


def find_target(frame, time, name) -> str:
    others = [c for c in frame.columns if c != time]
    if len(others) != 1:
        raise UserError(f"{name} has several value columns ({', '.join(others)}); choose one with --target")
    return others[0]


def numeric_column(column, label, name):
    """Floats; a cell that is not a number is an error naming its line; +-inf become missing."""
    pd = need_pandas()
    numbers = pd.to_numeric(column, errors="coerce").astype("float64")
    bad = numbers.isna() & column.notna() & (column.astype(str).str.strip() != "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserError(f"{name}: column {label!r} has a non-numeric value {column.iloc[row]!r} "
                        f"(data row {row + 1}, line {row + 2} counting the header)")
    return numbers.replace([np.inf, -np.inf], np.nan).to_numpy()


def parse_times(column, label, name):
    """(index, numeric?): numbers (years, step counts) stay numbers; anything else must parse as dates."""
    pd = need_pandas()
    if column.isna().any():
        row = int(np.flatnonzero(column.isna().to_numpy())[0])
        raise UserError(f"{name}: the time column {label!r} is empty at data row {row + 1}")
    if pd.api.types.is_datetime64_any_dtype(column):
        return pd.DatetimeIndex(column), False
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.notna().all() and not looks_like_dates(column):
        return pd.Index(numbers.astype("float64")), True
    try:
        return pd.DatetimeIndex(pd.to_datetime(column.astype(str), format="mixed")), False
    except (ValueError, TypeError) as e:
        raise UserError(f"{name}: the time column {label!r} holds values that are neither numbers nor dates "
                        f"({str(e).splitlines()[0][:80]})") from None


def looks_like_dates(column) -> bool:
    """Integers like 20240131 are dates written without separators (8 digits)."""
    text = column.astype(str).str.strip()
    return bool(text.str.fullmatch(r"\d{8}").all())


def numeric_grid(values, label, name, notes):
    """A numeric time column: the step is the smallest gap; every time must be first + k * step."""
    t = values.index.to_numpy(dtype=np.float64)
    if len(t) < 2:
        return values, 1.0
    step = float(np.min(np.diff(t)))
    k = (t - t[0]) / step
    if not np.allclose(k, np.round(k), atol=1e-6):
        i = int(np.flatnonzero(~np.isclose(k, np.round(k), atol=1e-6))[0])
        raise UserError(f"{name}: irregular time steps in column {label!r}: {t[i]:g} is not {t[0]:g} plus a "
                        f"multiple of the step {step:g}")
    k = np.round(k).astype(int)
    if k[-1] + 1 > len(t):
        notes.append(f"{k[-1] + 1 - len(t)} missing time steps inserted (to be interpolated)")
        pd = need_pandas()
        full = pd.DataFrame(np.nan, index=pd.Index(t[0] + step * np.arange(k[-1] + 1)), columns=values.columns)
        full.iloc[k] = values.to_numpy()
        values = full
    return values, step


def date_grid(values, freq, resample, label, name, notes):
    """Dates: the given or inferred frequency; missing steps inserted as gaps, off-grid stamps an error."""
    pd = need_pandas()
    index = values.index
    if freq is None:
        freq = infer_frequency(index)
        if freq is None:
            gaps = np.diff(index.to_numpy()).astype("timedelta64[s]")
            raise UserError(f"{name}: cannot infer a regular frequency from column {label!r} (gaps between rows "
                            f"range from {pd.Timedelta(gaps.min())} to {pd.Timedelta(gaps.max())}); pass --freq "
                            "(e.g. D, W, MS, QS, YS, h) and --resample to average each period")
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        raise UserError(f"unknown frequency {freq!r}; expected a pandas offset alias such as D, W, MS, QS, YS, h")
    if resample:
        before = len(values)
        values = values.resample(offset).mean()
        notes.append(f"{before} rows averaged into {len(values)} periods of {offset.freqstr}")
    grid = pd.date_range(values.index[0], values.index[-1], freq=offset)
    off = values.index[~values.index.isin(grid)]
    if len(off):
        raise UserError(f"{name}: irregular timestamps: {stamp(off[0])} in column {label!r} is not on the "
                        f"{offset.freqstr} grid starting at {stamp(grid[0])}; pass --resample to average each period")
    if len(grid) > len(values):
        notes.append(f"{len(grid) - len(values)} missing time steps inserted (to be interpolated)")
    return values.reindex(grid), offset.freqstr


def infer_frequency(index) -> str | None:
    """pandas.infer_freq on the whole index, else the most common answer over runs of 5 rows (gaps allowed)."""
    pd = need_pandas()
    if len(index) < 3:
        return None
    whole = infer_freq(index)
    if whole is not None:
        return whole
    votes = Counter(infer_freq(index[i:i + 5]) for i in range(0, max(1, len(index) - 4), 2))
    votes.pop(None, None)
    if not votes:
        return None
    freq = votes.most_common(1)[0][0]
    grid = pd.date_range(index[0], index[-1], freq=freq)
    return freq if index.isin(grid).all() else None


def infer_freq(index) -> str | None:
    """pandas.infer_freq as a string (pandas 3 warns that it will return an offset)."""
    pd = need_pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        freq = pd.infer_freq(index)
    return getattr(freq, "freqstr", freq)


def fill_gaps(values, target, max_gap, name, notes):
    """Interpolate inner gaps linearly; drop rows outside the target's first..last value; edge covariate gaps
    take the nearest value. A run of more than ``max_gap`` missing values is an error."""
    observed = values[target].notna().to_numpy()
    if not observed.any():
        raise UserError(f"{name}: the target column {target!r} has no values")
    first, last = int(np.argmax(observed)), len(observed) - int(np.argmax(observed[::-1]))
    if first or last < len(values):
        notes.append(f"{first + len(values) - last} rows before the first or after the last value of "
                     f"{target!r} dropped")
        values = values.iloc[first:last]
    for column in values.columns:
        series = values[column]
        gaps = series.isna().to_numpy()
        if not gaps.any():
            continue
        run, start = longest_run(gaps)
        if run > max_gap:
            raise UserError(f"{name}: column {column!r} has {run} missing values in a row from "
                            f"{stamp(values.index[start])} (more than --max-gap {max_gap}); fill them yourself or "
                            "raise --max-gap")
        if gaps.all():
            raise UserError(f"{name}: column {column!r} has no values")
        filled = series.interpolate(method="linear", limit_area="inside").ffill().bfill()
        values = values.assign(**{column: filled})
        notes.append(f"{int(gaps.sum())} missing values of {column!r} interpolated (longest run {run})")
    return values


def longest_run(flags: np.ndarray) -> tuple[int, int]:
    """(length, start) of the longest run of True."""
    best, start, run = 0, 0, 0
    for i, f in enumerate(flags):
        run = run + 1 if f else 0
        if run > best:
            best, start = run, i - run + 1
    return best, start
