"""The benchmark runs end to end on a tiny configuration and writes well-formed JSON (no timing checks)."""
import json
import math

import pytest

from rnnkit import bench


def test_quick_run_writes_every_section(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--cells", "lstm,gru,gru-cho,mingru", "--sizes", "2x5x8", "--repeats", "1",
                       "--backends", "torch,scan,reference", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert "train/LSTM" in capsys.readouterr().out
    positive = lambda v: isinstance(v, float) and v > 0 and math.isfinite(v)
    assert positive(result["sgemm_gflops"])

    seq = {(r["cell"], r["backend"]): r for r in result["sequence"]}
    assert set(seq) == {("torch.nn.LSTM", "torch.nn"), ("torch.nn.GRU", "torch.nn"), ("lstm", "torch"),
                        ("lstm", "reference"), ("gru", "torch"), ("gru", "reference"), ("gru-cho", "reference"),
                        ("mingru", "scan"), ("mingru", "reference")}
    for r in seq.values():
        assert (r["B"], r["T"], r["H"]) == (2, 5, 8)
        for key in ("forward_s", "train_s", "forward_vs_lstm", "train_vs_lstm", "train_gflops",
                    "train_fraction_of_sgemm"):
            assert positive(r[key]), (r, key)
    assert seq[("torch.nn.LSTM", "torch.nn")]["train_vs_lstm"] == 1.0
    # cells with a torch.nn counterpart are also compared with it, on the same configuration
    gru, nn_gru = seq[("gru", "torch")], seq[("torch.nn.GRU", "torch.nn")]
    assert gru["train_vs_nn"] == pytest.approx(gru["train_s"] / nn_gru["train_s"])
    assert seq[("lstm", "reference")]["train_vs_nn"] == pytest.approx(seq[("lstm", "reference")]["train_vs_lstm"])
    assert "train_vs_nn" not in seq[("gru-cho", "reference")]
    assert nn_gru["train_gflops"] == pytest.approx(3 * bench.flops_per_step("gru", 8) * 2 * 5 / nn_gru["train_s"] / 1e9)

    assert [r["H"] for r in result["streaming"]] == [32]
    assert all(positive(r["rnnkit_us"]) and positive(r["torch_nn_lstm_us"]) for r in result["streaming"])
    assert {(r["cell"], r["T"]) for r in result["scan"]} == {(c, T) for c in ("mingru", "minlstm") for T in (64, 256)}
    assert all(positive(r["speedup"]) for r in result["scan"])
    memory = {r["cell"]: r["saved_bytes"] for r in result["memory"]}
    assert set(memory) == {"torch.nn.LSTM", "lstm", "gru", "gru-cho", "mingru"} and min(memory.values()) > 0
    assert result["keras"] is None or isinstance(result["keras"], list)


def test_flops_follow_the_cell_shapes():
    H = 64
    assert bench.flops_per_step("lstm", H) == 2 * 4 * H * 2 * H
    assert bench.flops_per_step("gru-cho", H) == 3 * bench.flops_per_step("elman", H)
    assert bench.flops_per_step("mingru", H) < bench.flops_per_step("minlstm", H) < bench.flops_per_step("gru", H)
    assert bench.flops_per_step("lstm-proj", H) < bench.flops_per_step("lstm", H)


def test_bad_options_are_refused():
    with pytest.raises(SystemExit):
        bench.main(["--cells", "nope"])
    with pytest.raises(SystemExit):
        bench.main(["--sizes", "2x5"])
