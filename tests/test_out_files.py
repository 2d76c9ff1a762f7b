"""One check for every output file (tasks/options.check_out_file), before any work: rnnkit export's graph,
rnnkit visualize's page, the PNGs of evaluate and predict, rnnkit bench's JSON. A location that cannot be
written is one line and exit 2, nothing is left behind, and an existing file is replaced only with --overwrite.

Tests run as root, so "not writable" is simulated (a failing write probe), never with chmod.
"""
import errno
import os
import tempfile

import pytest
from helpers import error_of

from rnnkit.errors import UserError
from rnnkit.tasks.options import check_out_file


def commands(ck, out):
    """The CLI commands that write one output file named by the user, each before reading ``ck``."""
    return {".onnx": ["export", "--checkpoint", ck, "--out", out + ".onnx"],
            ".html": ["visualize", "--checkpoint", ck, "--out", out + ".html"]}


@pytest.fixture
def refuse_writes(monkeypatch):
    """Every write probe fails as in a read-only folder."""
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")
    monkeypatch.setattr(tempfile, "mkstemp", refuse)


def test_a_folder_that_is_a_file_is_refused_by_name(tmp_path, capsys):
    (tmp_path / "file").write_text("keep me")
    ck = str(tmp_path / "never-read.safetensors")
    for suffix, argv in commands(ck, str(tmp_path / "file" / "sub" / "x")).items():
        line = error_of(capsys, argv)
        assert f"lies under {tmp_path / 'file'}, which is a file" in line, line
    assert sorted(os.listdir(tmp_path)) == ["file"] and (tmp_path / "file").read_text() == "keep me"


def test_a_folder_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys, refuse_writes):
    ck = str(tmp_path / "never-read.safetensors")   # read after the check: "not found" would mean it came first
    for suffix, argv in commands(ck, str(tmp_path / "x")).items():
        line = error_of(capsys, argv)
        assert f"cannot write x{suffix} to {tmp_path}: Permission denied" in line, line
    assert os.listdir(tmp_path) == []


def test_the_write_probe_leaves_nothing_behind(tmp_path):
    assert check_out_file(tmp_path / "page.html", (".html",), overwrite=False) == tmp_path / "page.html"
    assert os.listdir(tmp_path) == []
    with pytest.raises(UserError, match="does not exist"):   # a missing folder is named, not created
        check_out_file(tmp_path / "new" / "page.html", (".html",), overwrite=False)
    assert os.listdir(tmp_path) == []


@pytest.fixture(scope="module")
def seq2seq_checkpoint(tmp_path_factory):
    """A seq2seq run of two updates on user files (the attention map needs attention, the default)."""
    from rnnkit.cli import main
    d = tmp_path_factory.mktemp("s2s")
    (d / "train.tsv").write_text("".join(f"{w}\t{w[::-1]}\n" for w in ["abc", "hgf", "dcab", "ef"] * 20))
    assert main(["train", "seq2seq", "--train", str(d / "train.tsv"), "--hidden-size", "8", "--embedding-dim", "4",
                 "--batch-size", "8", "--max-steps", "2", "--out", str(d / "run"), "--quiet"]) == 0
    return d


def test_an_attention_png_that_exists_is_replaced_only_with_overwrite(seq2seq_checkpoint, capsys, monkeypatch):
    import io
    import sys
    d = seq2seq_checkpoint
    ck, png = str(d / "run" / "best.safetensors"), d / "att.png"
    png.write_bytes(b"keep me")
    monkeypatch.setattr(sys, "stdin", io.StringIO("abc\n"))
    capsys.readouterr()
    for command in (["predict", "--checkpoint", ck], ["evaluate", "--checkpoint", ck, "--data", str(d / "train.tsv")]):
        line = error_of(capsys, [*command, "--attention-png", str(png)])
        assert f"{png} exists; choose another --attention-png or pass --overwrite" in line, line
        assert png.read_bytes() == b"keep me"
    from rnnkit.cli import main
    assert main(["predict", "--checkpoint", ck, "--attention-png", str(png), "--overwrite"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_png_options_get_the_output_file_checks(tmp_path, capsys, refuse_writes):
    """evaluate --png (classify's confusion matrix, forecast's plot) is checked before the checkpoint is read."""
    from rnnkit.tasks import contract
    ck = str(tmp_path / "never-read.safetensors")
    assert "cannot write cm.png" in error_of(capsys, ["evaluate", "--checkpoint", ck, "--data", ck,
                                                      "--png", str(tmp_path / "cm.png")])
    (tmp_path / "old.png").write_bytes(b"keep me")
    with pytest.raises(UserError, match="exists; choose another --png or pass --overwrite"):
        contract.check_png(str(tmp_path / "old.png"), "the picture", name="--png")
    with pytest.raises(UserError, match="needs a path ending in .png"):
        contract.check_png(str(tmp_path / "cm.jpg"), "the picture")


def bench_error(capsys, args) -> str:
    from rnnkit import bench
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--quick", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rnnkit bench: error:"), err
    return err[0]


def test_bench_json_gets_the_shared_check(tmp_path, capsys, monkeypatch):
    """rnnkit bench: an existing --out is replaced only with --overwrite; the same faults, the same words."""
    (tmp_path / "old.json").write_text("keep me")
    (tmp_path / "file").write_text("x")
    assert "exists; choose another --out or pass --overwrite" in bench_error(capsys, ["--out", str(tmp_path / "old.json")])
    assert (tmp_path / "old.json").read_text() == "keep me"
    assert "lies under" in bench_error(capsys, ["--out", str(tmp_path / "file" / "b.json")])
    assert "ending in .json" in bench_error(capsys, ["--out", str(tmp_path / "b.txt")])
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    assert "cannot write b.json" in bench_error(capsys, ["--out", str(tmp_path / "b.json")])
    assert sorted(os.listdir(tmp_path)) == ["file", "old.json"]


@pytest.mark.parametrize("task,command,option", [
    ("tag", "evaluate", "--png"), ("charlm", "evaluate", "--png"), ("caption", "evaluate", "--attention-png"),
    ("classify", "evaluate", "--attention-png"), ("classify", "predict", "--attention-png")])
def test_a_png_option_the_task_would_ignore_is_refused(task, command, option, tmp_path, capsys):
    """No silent no-op: only classify and forecast draw evaluate's --png, seq2seq evaluate's --attention-png, and
    seq2seq and caption predict's; any other checkpoint is refused before its model is read."""
    from rnnkit.train import save_checkpoint
    import torch
    ck = tmp_path / "ck.safetensors"
    save_checkpoint(ck, {"w": torch.zeros(1)}, config={"task": task})   # a header alone: never loaded as a model
    argv = [command, "--checkpoint", str(ck)] + (["--data", str(ck)] if command == "evaluate" else [str(ck)])
    line = error_of(capsys, argv + [option, str(tmp_path / "p.png")])
    assert f"{option}: rnnkit {command} draws no picture for a checkpoint of task '{task}'" in line, line
    assert not (tmp_path / "p.png").exists()
