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
