"""--tensorboard DIR: the trainer's losses, metrics, learning rate and gradient norms, read back from the event files."""
import json
import sys

import pytest

from rnnkit.cli import main
from rnnkit.train import load_checkpoint

pytest.importorskip("tensorboard", reason="tensorboard not installed: pip install 'rnnkit[tensorboard]'")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

ADDING = ["train", "adding", "--seq-len", "10", "--train-size", "256", "--val-size", "64", "--hidden-size", "8",
          "--epochs", "2", "--quiet"]


def read_events(log_dir) -> EventAccumulator:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def test_adding_run_writes_scalars_equal_to_its_history(tmp_path):
    out, logs = tmp_path / "run", tmp_path / "tb"
    assert main(ADDING + ["--out", str(out), "--tensorboard", str(logs)]) == 0
    events = read_events(logs)
    tags = events.Tags()["scalars"]
    assert {"train/loss", "train/grad_norm", "epoch/loss", "epoch/val_loss", "epoch/lr"} <= set(tags)
    ck = load_checkpoint(out / "last.safetensors")
    losses = ck.state["trainer"]["losses"]
    logged = events.Scalars("train/loss")
    assert [e.step for e in logged] == list(range(1, len(losses) + 1))
    assert [e.value for e in logged] == pytest.approx(losses, rel=1e-6)
    assert all(e.value > 0 for e in events.Scalars("train/grad_norm"))
    history = json.loads((out / "history.json").read_text())
    for name in ("loss", "val_loss", "lr"):
        scalars = events.Scalars(f"epoch/{name}")
        assert [e.step for e in scalars] == [row["step"] for row in history]
        assert [e.value for e in scalars] == pytest.approx([row[name] for row in history], rel=1e-6)
    assert "history" in events.Tags()["images"]


def one_line_error(capsys, argv, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1, err


def test_bad_log_directory_and_missing_package_are_one_line_errors(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_error(capsys, ADDING + ["--out", str(tmp_path / "a"), "--tensorboard", str(blocker)], "not a directory")
    one_line_error(capsys, ADDING + ["--out", str(tmp_path / "b"), "--tensorboard", str(blocker / "sub")],
                   "cannot create")
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)   # as if tensorboard were not installed
    one_line_error(capsys, ADDING + ["--out", str(tmp_path / "c"), "--tensorboard", str(tmp_path / "tb")],
                   'pip install "rnnkit[tensorboard]"')
    assert not (tmp_path / "c").exists()   # refused before any work


def test_charlm_run_logs_its_sample_and_bits_per_character(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. " * 60, encoding="utf-8")
    logs = tmp_path / "tb"
    assert main(["train", "charlm", "--text", str(text), "--hidden-size", "8", "--num-layers", "1",
                 "--embedding-dim", "4", "--batch-size", "4", "--seq-len", "16", "--max-steps", "10", "--quiet",
                 "--sample-length", "20", "--out", str(tmp_path / "run"), "--tensorboard", str(logs)]) == 0
    events = EventAccumulator(str(logs), size_guidance={"tensors": 0})
    events.Reload()
    assert {"epoch/bpc", "epoch/val_bpc", "train/loss"} <= set(events.Tags()["scalars"])
    sample = events.Tensors("sample/text_summary")[0].tensor_proto.string_val[0].decode()
    assert len(sample) >= 20   # the 20 generated characters (TensorBoard may add markdown around them)
