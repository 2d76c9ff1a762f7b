"""time-series forecasting with the classical baselines side by side (naive, seasonal naive, ETS, ARIMA)

Reads a CSV with a time column and value columns (or a built-in series, --dataset), puts it on a regular
time grid (missing values interpolated, counted), and splits it in time order: training, validation,
and a test part at the end. An RNN reads --lookback steps (target and --covariates) and predicts the next
--horizon steps of the target at once; with --quantiles it also predicts the 10% and 90% quantiles
(pinball loss), an 80% interval. The scaling is fitted on the training part only. On the test part the
RNN and every baseline forecast from each origin (rolling origin) and one table reports MAE, RMSE, MASE
and sMAPE (and the interval's coverage); OUT/forecast.{json,csv,md,png} keep it, OUT/best.safetensors
holds everything ``rnnkit predict`` needs.
"""
from __future__ import annotations

import csv
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.timeseries import Series, need_pandas, read_series
from ..data.tsdatasets import DATASETS, dataset_help, need_statsmodels
from ..data.windows import Scaler, Split, windows
from ..errors import UserError
from ..models.baselines import BASELINES, make_baselines, one_blas_thread
from ..models.forecaster import CELLS, DECODERS, Forecaster, ForecasterConfig, pinball_loss
from ..train import (StepOutput, TensorBatches, Trainer, TrainConfig, load_checkpoint, restore_model, save_checkpoint)
from ..train.forecast_metrics import mase_scale, scores
from . import contract, forecast_report
from .forecast_report import Evaluation
from .options import option

QUANTILES = (0.1, 0.5, 0.9)   # the 10% and 90% quantiles bound an 80% interval
DATA_KEYS = ("name", "columns", "time_column", "freq", "season", "lookback", "horizon", "relative", "scaler",
             "test_fraction", "val_fraction", "max_gap", "resample")   # what a checkpoint says about its data


@dataclass
class Options(contract.TaskOptions):
    train: str | None = contract.shared("train", None, "CSV file: a time column and value columns; the whole series, "
                                        "split in time order into training, validation and test (default: --dataset)")
    valid: str | None = contract.shared("valid", None, "not used: forecast splits one series in time order")
    val_fraction: float = contract.shared("val_fraction", 0.1, "the part before the test part, for choosing the best "
                                          "epoch and calibrating the interval")
    dataset: str = option("co2", "built-in series (no download): " + dataset_help(), "data", choices=tuple(DATASETS))
    target: str | None = option(None, "the column to forecast (default: the only value column)", "data")
    covariates: list[str] | None = option(None, "more columns the RNN reads (their past only)", "data",
                                          metavar="COLUMN")
    time_column: str | None = option(None, "the time column (default: one named date/time/ds/year..., else "
                                           "the first)", "data")
    freq: str | None = option(None, "frequency as a pandas alias (D, W, MS, QS, YS, h); default: inferred", "data")
    resample: bool = option(False, "average the rows of each --freq period (for irregular timestamps)", "data")
    max_gap: int | None = option(None, "longest run of missing values to interpolate (default: one season)", "data")
    season: int | None = option(None, "steps per season, for seasonal naive, MASE and ETS/ARIMA (default: from "
                                      "the frequency, 12 for monthly)", "data")
    lookback: int | None = option(None, "input steps per window (default: 3 seasons, at least 2 horizons)", "data")
    horizon: int = option(12, "steps to forecast", "data")
    test_fraction: float = option(0.1, "the last part of the series, forecast from every origin (rolling)", "data")
    relative: bool = option(True, "predict the change from the last observed value (carries a trend beyond the "
                                  "training range)", "data")
    cell: str = option("gru", "recurrent cell", "model", choices=tuple(sorted(CELLS)))
    hidden_size: int = option(64, "units per layer", "model")
    num_layers: int = option(1, "stacked layers", "model")
    dropout: float = option(0.0, "dropout between layers and before the head", "model")
    decoder: str = option("direct", "direct: all steps from the last state; seq2seq: a recurrent decoder",
                          "model", choices=DECODERS)
    baselines: list[str] = option(BASELINES, "classical forecasts in the table, fitted on the history "
                                  "before the test part", "model", metavar="NAME")
    quantiles: bool = option(True, "predict the 10th, 50th and 90th percentiles (pinball loss): an 80 per cent "
                                   "interval", "model")
    minutes: float | None = contract.shared("minutes", 3.0)
    epochs: int = contract.shared("epochs", 300, "passes over the training windows, if the budget lasts")
    patience: int | None = contract.shared("patience", 40, "stop after this many validations without a "
                                           "better loss (one per epoch, plus one every --eval-every updates)")
    lr: float = contract.shared("lr", 3e-3)
    schedule: str = contract.shared("schedule", "none")
    clip_norm: float = contract.shared("clip_norm", 1.0)
    warmup_steps: int | None = contract.shared("warmup_steps", None, "linear warmup updates (default: none)")
    threads: int | None = contract.shared("threads", 1, "torch threads for training: a model this small runs "
                                          "fastest on one (measured 11x faster than two on a busy 2-core machine)")
    out: str = contract.shared("out", "runs/forecast", "directory for the checkpoint, the table and the plot")
    plot: bool = option(True, "write OUT/forecast.png (needs matplotlib)", "output")

    def __post_init__(self):
        super().__post_init__()
        if self.valid is not None:
            raise UserError("forecast splits one series in time order (--val-fraction, --test-fraction); "
                            "it takes no --valid file")
        for name in ("horizon", "hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise UserError(f"option {name} must be a positive integer, got {getattr(self, name)}")
        for name in ("lookback", "season", "max_gap"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UserError(f"option {name} must be a positive integer, got {getattr(self, name)}")
        if not 0 < self.test_fraction < 0.5:
            raise UserError(f"option test_fraction must be in (0, 0.5), got {self.test_fraction}")
        contract.check_rate("dropout", self.dropout)
        unknown = sorted(set(self.baselines) - set(BASELINES))
        if unknown or not self.baselines:
            raise UserError(f"unknown baseline {unknown[0]!r}; expected some of {', '.join(BASELINES)}" if unknown
                            else "--baselines needs at least one name")
        if self.train is None and (self.target or self.covariates or self.time_column):
            raise UserError("--target, --covariates and --time-column choose columns of a --train FILE; "
                            "a built-in --dataset has its own")


def load_series(o: Options) -> Series:
    """The user's CSV or the built-in dataset, cleaned (see rnnkit.data.timeseries)."""
    if o.train is not None:
        return read_series(o.train, o.target, tuple(o.covariates or ()), o.time_column, o.freq, o.resample,
                           o.max_gap, o.season)
    d = DATASETS[o.dataset]
    return read_series(d.load(), d.target, d.covariates, None, o.freq, o.resample, o.max_gap, o.season or d.season,
                       name=o.dataset)


def default_lookback(season: int, horizon: int) -> int:
    return max(3 * season, 2 * horizon)


def run(o: Options) -> int:
    need_pandas(), need_statsmodels()
    out = Path(o.out)
    if o.plot:
        forecast_report.check_matplotlib()
    contract.start(o)   # --out checked before any work, then seeded
    series = load_series(o)
    lookback = o.lookback or default_lookback(series.season, o.horizon)
    split = Split.make(len(series), lookback, o.horizon, o.test_fraction, o.val_fraction, series.name)
    scaler = Scaler.fit(series.values[:split.train], series.columns)   # the training part only: no leakage
    scaled = scaler.transform(series.values)
    data = {"name": series.name, "columns": list(series.columns), "time_column": series.time_column,
            "freq": series.freq, "season": series.season, "lookback": lookback, "horizon": o.horizon,
            "relative": o.relative, "scaler": scaler.to_dict(), "test_fraction": o.test_fraction,
            "val_fraction": o.val_fraction, "max_gap": o.max_gap, "resample": o.resample,
            "baselines": list(o.baselines)}
    config = ForecasterConfig(len(series.columns), o.horizon, o.cell, o.hidden_size, o.num_layers, o.dropout,
                              QUANTILES if o.quantiles else (), o.decoder)
    model = Forecaster(config)
    train_x, train_y, _ = windows(scaled, split.origins("train", lookback, o.horizon), lookback, o.horizon, o.relative)
    val_x, val_y, _ = windows(scaled, split.origins("valid", lookback, o.horizon), lookback, o.horizon, o.relative)
    print(f"forecast: {series.name}, {len(series)} steps of {series.freq} (season {series.season}); "
          f"{', '.join(series.notes) or 'no missing values'}; windows of {lookback} -> {o.horizon}: "
          f"{len(train_x)} training, {len(val_x)} validation, {split.total - split.valid - o.horizon + 1} test "
          f"origins; {sum(p.numel() for p in model.parameters()):,} parameters ({config.num_layers} x "
          f"{config.hidden_size} {config.cell}, {config.decoder})", file=sys.stderr)
    train_config = TrainConfig(epochs=o.epochs, max_steps=o.max_steps, max_minutes=o.minutes, optimizer=o.optimizer,
                               lr=o.lr, weight_decay=o.weight_decay, schedule=o.schedule, clip_norm=o.clip_norm or None,
                               patience=o.patience, warmup_steps=contract.warmup(o, 0), eval_every=o.eval_every,
                               seed=o.seed, verbose=0 if o.quiet else 2, out_dir=str(out))
    trainer = Trainer(model, forecast_step(model), train_config,   # monitors the validation loss
                      task_config={"task": "forecast", "model": config.to_dict(), "data": data, "options": asdict(o)})
    trainer.fit(TensorBatches(torch.from_numpy(train_x), torch.from_numpy(train_y), batch_size=o.batch_size,
                              shuffle=True),
                TensorBatches(torch.from_numpy(val_x), torch.from_numpy(val_y), batch_size=1024))
    best = load_checkpoint(out / "best.safetensors")
    restore_model(model, best)
    if config.quantiles:   # conformal widening on the validation windows, saved with the best weights
        data["widen"] = conformal_widening(model, data, series.values, split.origins("valid", lookback, o.horizon))
        save_checkpoint(out / "best.safetensors", best.weights, best.state, {**best.config, "data": data})
    result = evaluate_series(model, data, series, split)
    report = result.report
    report["training"] = {"updates": trainer.global_step, "seconds": round(trainer.elapsed, 1),
                          "best_val_loss": trainer.best, "stop": trainer.stop_reason or "all epochs ran"}
    forecast_report.write(result, out, plot=o.plot)
    print(forecast_report.table(report))
    print(f"checkpoint and report in {out} ({trainer.global_step} updates, {trainer.elapsed:.0f} s)")
    return 0


def forecast_step(model: Forecaster):
    """The trainer's step: pinball loss over the quantiles, or the mean absolute error for a point forecast."""
    quantiles = model.config.quantiles

    def step(batch, state):
        x, y = batch
        out = model(x)                                               # (B, H, Q)
        loss = pinball_loss(out, y, quantiles) if quantiles else (out[..., 0] - y).abs().mean()
        return StepOutput(loss, None, n=len(y))
    return step


@torch.no_grad()
def rnn_forecast(model: Forecaster, data: dict, values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Forecasts (N, H, Q) in the data's own units from the windows before ``starts``; the outer quantiles
    widened by ``data["widen"]`` when the model was calibrated."""
    scaler = Scaler.from_dict(data["scaler"])
    x, _, level = windows(scaler.transform(values), starts, data["lookback"], data["horizon"], data["relative"])
    model.eval()
    out = model(torch.from_numpy(x)).numpy().astype(np.float64)     # (N, H, Q)
    out = scaler.target_inverse(out + level[:, None, None])
    if data.get("widen") is not None and out.shape[-1] > 1:
        widen, mid = np.asarray(data["widen"]), out[..., out.shape[-1] // 2]
        out[..., 0] = np.minimum(out[..., 0] - widen, mid)
        out[..., -1] = np.maximum(out[..., -1] + widen, mid)
    return out


def conformal_widening(model: Forecaster, data: dict, values: np.ndarray, starts: np.ndarray) -> list[float]:
    """Per horizon step, how much to widen the outer quantiles so that the validation windows are covered
    at the nominal level: conformalized quantile regression (Romano, Patterson & Candes 2019). The score of
    a window is max(lo - y, y - hi); the widening is its ceil((n + 1)(1 - alpha)) / n empirical quantile
    (negative: the interval was too wide and shrinks). The validation part also chose the best epoch, so
    the test coverage, reported beside it, is the honest figure."""
    out = rnn_forecast(model, {**data, "widen": None}, values, starts)
    actual = values[starts[:, None] + np.arange(data["horizon"]), 0]      # (N, H)
    scores_ = np.maximum(out[..., 0] - actual, actual - out[..., -1])   # (N, H)
    level = model.config.quantiles[-1] - model.config.quantiles[0]
    n = len(starts)
    return np.quantile(scores_, min(1.0, np.ceil((n + 1) * level) / n), axis=0, method="higher").tolist()


def evaluate_series(model: Forecaster, data: dict, series: Series, split: Split) -> Evaluation:
    """The RNN and every baseline from each test origin: forecasts, the metrics table, and what made them."""
    y, h, season = series.values[:, 0], data["horizon"], series.season
    starts = split.origins("test", data["lookback"], h)
    actual = y[starts[:, None] + np.arange(h)]                       # (N, H)
    scale = mase_scale(y[:split.valid], season)                      # in-sample: the history before the test part
    out = rnn_forecast(model, data, series.values, starts)
    point = model.point(torch.from_numpy(out)).numpy()
    interval = (out[..., 0], out[..., -1]) if model.config.quantiles else None
    forecasts = {"rnn": point}
    table = {"rnn": scores(actual, point, scale, interval)}
    described = {"rnn": f"{model.config.num_layers} x {model.config.hidden_size} {model.config.cell}"}
    for baseline in make_baselines(season, data.get("baselines", BASELINES)):
        with one_blas_thread():
            baseline.fit(y[:split.valid])
            forecasts[baseline.name] = baseline.rolling(y, starts, h)
        table[baseline.name] = scores(actual, forecasts[baseline.name], scale)
        described[baseline.name] = getattr(baseline, "description", "") or baseline.name
    best = min((m for m in table if m != "rnn"), key=lambda m: table[m]["mase"])
    report = {**table["rnn"], "series": series.name, "steps": len(series), "freq": str(series.freq), "season": season,
              "notes": series.notes, "lookback": data["lookback"], "horizon": h,
              "split": {"train": split.train, "valid": split.valid, "total": split.total, "test_origins": len(starts)},
              "mase_scale": scale, "metrics": table, "methods": described, "best_baseline": best,
              "rnn_beats_all": all(table["rnn"]["mase"] < table[m]["mase"] for m in table if m != "rnn")}
    return Evaluation(report, series, starts, actual, forecasts, interval)


# ---- from a checkpoint: rnnkit evaluate / rnnkit predict (tasks/contract.py) ----------------------

def load(ck) -> tuple[Forecaster, dict]:
    """The forecaster and its data description (columns, scaling, lookback...) saved in a checkpoint."""
    try:
        model = Forecaster(ForecasterConfig(**ck.config["model"]))
        data = ck.config["data"]
        missing = [k for k in DATA_KEYS if k not in data]
        if missing:
            raise KeyError(", ".join(missing))
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"checkpoint {ck.path} has a malformed forecast config ({e})") from None
    restore_model(model, ck)
    return model.eval(), data


def read_like(path: str, data: dict) -> Series:
    """A user's CSV read with the columns, frequency and gap rules the model was trained with."""
    target, *covariates = data["columns"]
    freq = data["freq"] if isinstance(data["freq"], str) else None
    return read_series(path, target, tuple(covariates), data["time_column"], freq, data["resample"],
                       data["max_gap"], data["season"])


def evaluate_file(ck, path: str, png: str | None = None) -> dict:
    """The rolling-origin table of the model and the baselines on the last test_fraction of a CSV (the
    history before it fits the baselines); ``png``: also plot it there."""
    need_statsmodels()
    model, data = load(ck)
    series = read_like(path, data)
    split = Split.make(len(series), data["lookback"], data["horizon"], data["test_fraction"], data["val_fraction"],
                       series.name)
    result = evaluate_series(model, data, series, split)
    if png:
        forecast_report.check_matplotlib()
        forecast_report.write_png(result, Path(png))
    return result.report


report = forecast_report.table


def predict(ck, source: str, stream) -> None:
    """CSV on ``stream``: the ``horizon`` steps after the end of the history in ``source`` (a CSV path, or -
    for standard input), the point forecast and the 10%/90% quantiles when the model has them."""
    model, data = load(ck)
    series = read_like(source, data)
    if len(series) < data["lookback"]:
        raise UserError(f"{series.name} has {len(series)} time steps after cleaning; the model reads the last "
                        f"{data['lookback']} (its lookback)")
    out = rnn_forecast(model, data, series.values, np.array([len(series)]))[0]   # (H, Q)
    point = model.point(torch.from_numpy(out)).numpy()
    target = data["columns"][0]
    extra = [(i, f"{target}_p{round(100 * q)}") for i, q in enumerate(model.config.quantiles) if q != 0.5]
    w = csv.writer(stream, lineterminator="\n")
    w.writerow([series.time_column, target, *(name for _, name in extra)])
    for k, time in enumerate(series.future_times(data["horizon"])):
        w.writerow([time, f"{point[k]:.6g}", *(f"{out[k, i]:.6g}" for i, _ in extra)])
