"""The forecast task end to end: the model, training from the CLI on a tiny CSV, evaluate --json and predict
from the checkpoint in a new process, no leakage from the test part, and bad inputs as one-line errors."""
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pd = pytest.importorskip("pandas")
pytest.importorskip("statsmodels")

from rnnkit.cli import main   # noqa: E402
from rnnkit.models.forecaster import Forecaster, ForecasterConfig, pinball_loss   # noqa: E402
from rnnkit.train import load_checkpoint   # noqa: E402

from helpers import error_of

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--lookback", "8", "--horizon", "4", "--hidden-size", "8", "--epochs", "6", "--patience", "6",
        "--minutes", "1", "--batch-size", "16", "--quiet", "--no-plot"]


def cli(*args, stdin=None):
    """rnnkit in a new process: (status, stdout, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "rnnkit.cli", *args], capture_output=True, text=True, env=env,
                       input=stdin, timeout=300)
    return p.returncode, p.stdout, p.stderr


def series(n=84, seed=0):
    """Quarterly: trend, a yearly season, noise, and a covariate that leads the target by one step."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    lead = rng.standard_normal(n + 1)
    return pd.DataFrame({"date": pd.date_range("2000-01-01", periods=n, freq="QS").strftime("%Y-%m-%d"),
                         "sales": 50 + 0.3 * t + 5 * np.sin(2 * np.pi * t / 4) + lead[:-1]
                         + 0.2 * rng.standard_normal(n),
                         "ads": lead[1:]})


def write(tmp_path, frame, name="sales.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


# ---- the model -------------------------------------------------------------------------------------

@pytest.mark.parametrize("decoder", ["direct", "seq2seq"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_forecaster_shapes_and_sorted_quantiles(decoder, cell):
    torch.manual_seed(0)
    model = Forecaster(ForecasterConfig(3, horizon=5, cell=cell, hidden_size=6, quantiles=(0.1, 0.5, 0.9),
                                        decoder=decoder))
    out = model(torch.randn(4, 7, 3))
    assert out.shape == (4, 5, 3) and (out.diff(dim=-1) >= 0).all()
    assert torch.equal(model.point(out), out[..., 1])
    point = Forecaster(ForecasterConfig(3, horizon=5, cell=cell, hidden_size=6, decoder=decoder))
    assert point(torch.randn(2, 7, 3)).shape == (2, 5, 1)


def test_pinball_loss_by_hand():
    out = torch.tensor([[[1.0, 2.0]]])                # one window, one step, quantiles 0.2 and 0.8
    # y = 3: errors 2 and 1 -> 0.2 * 2 and 0.8 * 1; mean = (0.4 + 0.8) / 2
    assert pinball_loss(out, torch.tensor([[3.0]]), (0.2, 0.8)).item() == pytest.approx(0.6)
    # y = 0: errors -1 and -2 -> (0.2 - 1)(-1) = 0.8 and (0.8 - 1)(-2) = 0.4
    assert pinball_loss(out, torch.tensor([[0.0]]), (0.2, 0.8)).item() == pytest.approx(0.6)


def test_bad_model_configs():
    with pytest.raises(ValueError, match="increasing"):
        ForecasterConfig(1, 2, quantiles=(0.9, 0.1))
    with pytest.raises(ValueError, match="unknown decoder"):
        ForecasterConfig(1, 2, decoder="beam")


# ---- the task from the command line ------------------------------------------------------------------

def test_train_evaluate_predict_from_the_cli(tmp_path, capsys):
    """A real training run on a user CSV with a covariate; then evaluate --json and predict (from a file
    and from standard input) from its checkpoint in new processes."""
    data = write(tmp_path, series())
    out = tmp_path / "run"
    assert main(["train", "forecast", "--train", data, "--target", "sales", "--covariates", "ads",
                 "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    for method in ("rnn", "naive", "seasonal_naive", "ets", "arima"):
        assert f"\n{method} " in printed
    report = json.loads((out / "forecast.json").read_text())
    assert set(report["metrics"]) == {"rnn", "naive", "seasonal_naive", "ets", "arima"}
    assert report["split"] == {"train": 68, "valid": 76, "total": 84, "test_origins": 5}
    assert 0 <= report["coverage"] <= 1
    rows = list(csv.DictReader(io.StringIO((out / "forecast.csv").read_text())))
    assert len(rows) == 5 * 4 and rows[0]["origin"] == "2018-10-01" and rows[0]["time"] == "2019-01-01"
    assert float(rows[0]["actual"]) == pytest.approx(pd.read_csv(data)["sales"][76], rel=1e-5)
    assert (out / "forecast.md").read_text().startswith("| method | MASE |")
    ck = load_checkpoint(out / "best.safetensors")
    assert ck.config["task"] == "forecast" and ck.config["data"]["columns"] == ["sales", "ads"]
    assert len(ck.config["data"]["widen"]) == 4                        # calibrated interval, per step

    status, stdout, stderr = cli("evaluate", "--checkpoint", str(out / "best.safetensors"), "--data", data, "--json")
    assert status == 0, stderr
    got = json.loads(stdout)
    assert got["mase"] == pytest.approx(report["mase"], rel=1e-4)   # the same test windows, the same model
    assert got["metrics"]["arima"]["mase"] == pytest.approx(report["metrics"]["arima"]["mase"], rel=1e-4)

    status, stdout, stderr = cli("predict", "--checkpoint", str(out / "best.safetensors"), data)
    assert status == 0, stderr
    pred = list(csv.DictReader(io.StringIO(stdout)))
    assert [r["date"] for r in pred] == ["2021-01-01", "2021-04-01", "2021-07-01", "2021-10-01"]
    assert all(float(r["sales_p10"]) <= float(r["sales"]) <= float(r["sales_p90"]) for r in pred)
    status, piped, stderr = cli("predict", "--checkpoint", str(out / "best.safetensors"), "-",
                                stdin=Path(data).read_text())
    assert status == 0 and piped == stdout, stderr


def test_no_leakage_from_the_test_part(tmp_path, capsys):
    """Training sees the training and validation parts only: changing the test part changes neither the
    scaler nor the trained weights (same seed), only the test scores."""
    frame = series()
    other = frame.copy()
    other.loc[76:, "sales"] = other.loc[76:, "sales"] * 3 + 100
    runs = []
    for i, f in enumerate((frame, other)):
        out = tmp_path / f"run{i}"
        assert main(["train", "forecast", "--train", write(tmp_path, f, f"s{i}.csv"), "--target", "sales",
                     "--out", str(out), *TINY, "--baselines", "naive"]) == 0
        runs.append((load_checkpoint(out / "best.safetensors"), json.loads((out / "forecast.json").read_text())))
    (a, ra), (b, rb) = runs
    assert a.config["data"]["scaler"] == b.config["data"]["scaler"]
    assert all(torch.equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert ra["mase_scale"] == rb["mase_scale"] and ra["mase"] != rb["mase"]
    capsys.readouterr()


def test_built_in_dataset_listed_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["train", "forecast", "--help"])
    text = capsys.readouterr().out
    for name in ("sunspots", "co2", "co2-weekly", "elnino", "macrodata"):
        assert name in text


@pytest.mark.parametrize("make,extra,message", [
    (lambda f: f.assign(sales=f["sales"].astype(object).where(f.index != 3, "n/a?")), [],
     "column 'sales' has a non-numeric value 'n/a\\?'"),
    (lambda f: f.assign(sales=7.0), [], "column 'sales' is constant"),
    (lambda f: f.iloc[:10], [], "has 10 time steps, fewer than lookback \\+ horizon = 8 \\+ 4"),
    (lambda f: f.iloc[:22], [], "only 14 are left for training"),
    (lambda f: f.drop(index=[5, 9]).assign(date=lambda g: g["date"].where(g.index != 20, "2001-09-17")), [],
     "cannot infer a regular frequency|irregular timestamps"),
    (lambda f: f.assign(sales=f["sales"].where((f.index < 30) | (f.index > 45))), [],
     "16 missing values in a row"),
    (lambda f: f, ["--covariates", "tv"], "has no column 'tv'"),
])
def test_bad_inputs_are_one_line_errors(tmp_path, capsys, make, extra, message):
    import re
    line = error_of(capsys, ["train", "forecast", "--train", write(tmp_path, make(series())), "--target", "sales",
                             "--out", str(tmp_path / "o"), *TINY, *extra])
    assert re.search(message, line), line


@pytest.mark.parametrize("argv,message", [
    (["--horizon", "0"], "horizon must be a positive integer"),
    (["--test-fraction", "0.7"], "test_fraction must be in"),
    (["--target", "x"], "choose columns of a --train FILE"),
    (["--valid", __file__], "takes no --valid file"),
    (["--dataset", "nile"], "invalid choice"),
    (["--baselines", "naive", "prophet"], "unknown baseline 'prophet'"),
])
def test_bad_options(capsys, argv, message):
    assert message in error_of(capsys, ["train", "forecast", *argv])


def test_predict_needs_a_full_lookback(tmp_path, capsys):
    data = write(tmp_path, series())
    out = tmp_path / "run"
    assert main(["train", "forecast", "--train", data, "--target", "sales", "--out", str(out), *TINY,
                 "--max-steps", "2", "--baselines", "naive", "seasonal_naive"]) == 0
    capsys.readouterr()
    short = write(tmp_path, series().iloc[:6], "short.csv")
    assert "the model reads the last 8" in error_of(capsys, ["predict", "--checkpoint", str(out / "best.safetensors"),
                                                              short])


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["co2", "sunspots", "macrodata"])
def test_built_in_series_train_end_to_end(tmp_path, capsys, dataset):
    out = tmp_path / dataset
    assert main(["train", "forecast", "--dataset", dataset, "--minutes", "0.5", "--quiet", "--out", str(out)]) == 0
    report = json.loads((out / "forecast.json").read_text())
    assert report["metrics"]["rnn"]["mase"] < report["metrics"]["naive"]["mase"]
    assert (out / "forecast.png").stat().st_size > 10_000
