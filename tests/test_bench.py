"""The benchmark runs end to end on a tiny configuration and writes well-formed JSON (no timing checks)."""
import json
import math

import pytest
import torch

from rnnkit import bench


def test_quick_run_writes_every_section(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--cells", "lstm,gru,gru-cho,mingru", "--sizes", "2x5x8", "--repeats", "1",
                       "--backends", "torch,scan,reference", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert "train/LSTM" in capsys.readouterr().out
    positive = lambda v: isinstance(v, float) and v > 0 and math.isfinite(v)
    assert positive(result["peak_mm_gflops"])

    seq = {(r["cell"], r["backend"]): r for r in result["sequence"]}
    assert set(seq) == {("torch.nn.LSTM", "torch.nn"), ("torch.nn.GRU", "torch.nn"), ("lstm", "torch"),
                        ("lstm", "reference"), ("gru", "torch"), ("gru", "reference"), ("gru-cho", "reference"),
                        ("mingru", "scan"), ("mingru", "reference")}
    for r in seq.values():
        assert (r["B"], r["T"], r["H"]) == (2, 5, 8)
        for key in ("forward_s", "train_s", "forward_vs_lstm", "train_vs_lstm", "train_gflops",
                    "train_fraction_of_peak"):
            assert positive(r[key]), (r, key)
    assert seq[("torch.nn.LSTM", "torch.nn")]["train_vs_lstm"] == 1.0
    # cells with a torch.nn counterpart are also compared with it, on the same configuration
    gru, nn_gru = seq[("gru", "torch")], seq[("torch.nn.GRU", "torch.nn")]
    assert gru["train_vs_nn"] == pytest.approx(gru["train_s"] / nn_gru["train_s"])
    assert seq[("lstm", "reference")]["train_vs_nn"] == pytest.approx(seq[("lstm", "reference")]["train_vs_lstm"])
    assert "train_vs_nn" not in seq[("gru-cho", "reference")]

    assert [r["H"] for r in result["streaming"]] == [32]
    assert all(positive(r["rnnkit_us"]) and positive(r["torch_nn_lstm_us"]) for r in result["streaming"])
    assert {(r["cell"], r["T"]) for r in result["scan"]} == {(c, T) for c in ("mingru", "minlstm") for T in (64, 256)}
    assert all(positive(r["speedup"]) for r in result["scan"])
    memory = {r["cell"]: r["saved_bytes"] for r in result["memory"]}
    assert set(memory) == {"torch.nn.LSTM", "lstm", "gru", "gru-cho", "mingru"} and min(memory.values()) > 0
    assert result["keras"] is None or isinstance(result["keras"], list)


@pytest.mark.parametrize("name", list(bench.CELLS))
def test_flops_per_step_count_the_matmuls_the_layer_does(name):
    """flops_per_step against torch's own FLOP counter on the reference loop (every matmul the cell does)."""
    from torch.utils.flop_counter import FlopCounterMode
    B, T, H = 2, 3, 8
    layer = bench.make_layer(name, H, "reference").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        layer(torch.randn(B, T, H))
    assert counter.get_total_flops() == bench.flops_per_step(name, H) * B * T


@pytest.mark.parametrize("args", [["--cells", "nope"], ["--sizes", "2x5"], ["--sizes", "2x5x-1"],
                                  ["--repeats", "0"], ["--repeats", "many"], ["--threads", "-2"],
                                  ["--backends", "gpu"], ["--sizes", "100000x100000x100000"],
                                  ["--out", "."], ["--out", "missing-dir/bench.json"], ["--bogus"]])
def test_bad_options_are_one_line_and_exit_2(args, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(args + ([] if "--out" in args else ["--out", str(tmp_path / "b.json")]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rnnkit bench: error:"), err
    assert not (tmp_path / "b.json").exists()
