"""--resume for classify and tag (the shared RunOptions mechanism): an interrupted run resumed equals the
uninterrupted one, the run's own options and vocabularies are kept, and a contradiction is refused in one line."""
import shutil

import pytest
import torch

from rnnkit.cli import main
from rnnkit.train import load_checkpoint

from helpers import error_of
from test_text_tasks import bio_sentences, sentiment_rows, write_columns, write_table

SMALL_CLASSIFY = ["--embedding-dim", "16", "--hidden-size", "16", "--batch-size", "16", "--quiet"]
SMALL_TAG = ["--word-dim", "16", "--char-size", "16", "--char-dim", "8", "--hidden-size", "16", "--batch-size", "16",
             "--quiet"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    return {"train": write_table(d / "train.tsv", sentiment_rows(200, 0), "tsv"),
            "valid": write_table(d / "valid.tsv", sentiment_rows(40, 1), "tsv"),
            "other": write_table(d / "other.tsv", sentiment_rows(50, 2), "tsv"),
            "tag_train": write_columns(d / "train.txt", bio_sentences(120, 0)),
            "tag_valid": write_columns(d / "valid.txt", bio_sentences(30, 1))}


def classify_args(files, out, *extra):
    return ["train", "classify", "--train", files["train"], "--valid", files["valid"], "--out", str(out),
            *SMALL_CLASSIFY, *extra]


def tag_args(files, out, *extra):
    return ["train", "tag", "--train", files["tag_train"], "--valid", files["tag_valid"], "--out", str(out),
            *SMALL_TAG, *extra]


def trainer_state(out):
    return load_checkpoint(out / "last.safetensors").state["trainer"]


def assert_same_run(a, b):
    """Two runs' last checkpoints: the same losses, validation history, position and weights."""
    ca, cb = load_checkpoint(a / "last.safetensors"), load_checkpoint(b / "last.safetensors")
    sa, sb = ca.state["trainer"], cb.state["trainer"]
    assert (sa["epoch"], sa["batch"], sa["global_step"]) == (sb["epoch"], sb["batch"], sb["global_step"])
    assert sa["losses"] == sb["losses"]
    assert [r.get("val_acc") for r in sa["history"]] == [r.get("val_acc") for r in sb["history"]]
    assert ca.weights.keys() == cb.weights.keys()
    for name in ca.weights:
        assert torch.equal(ca.weights[name], cb.weights[name]), name


# A constant rate after warmup: an interruption by --max-steps does not change the schedule (a cosine would
# span the shorter first run), so the resumed run must equal the uninterrupted one exactly.
@pytest.mark.parametrize("task", ["classify", "tag"])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, files, task):
    args = classify_args if task == "classify" else tag_args
    run = ["--epochs", "2", "--schedule", "none"]
    assert main(args(files, tmp_path / "full", *run)) == 0
    assert main(args(files, tmp_path / "cut", *run, "--max-steps", "5")) == 0   # stopped inside epoch 1
    cut = trainer_state(tmp_path / "cut")
    assert (cut["epoch"], cut["batch"], cut["global_step"]) == (0, 5, 5)
    assert main(["train", task, "--out", str(tmp_path / "cut"), "--resume", "--epochs", "2", "--quiet"]) == 0
    assert_same_run(tmp_path / "full", tmp_path / "cut")


def test_resume_keeps_the_runs_own_options_and_vocabulary(tmp_path, files):
    out = tmp_path / "run"
    assert main(classify_args(files, out, "--tokens", "char", "--hidden-size", "8", "--max-steps", "3")) == 0
    before = load_checkpoint(out / "last.safetensors").config
    assert main(["train", "classify", "--out", str(out), "--resume", "--max-steps", "6", "--quiet"]) == 0
    ck = load_checkpoint(out / "last.safetensors")
    assert ck.state["trainer"]["global_step"] == 6
    assert ck.config["options"]["tokens"] == "char" and ck.config["options"]["train"] == files["train"]
    assert ck.config["model"] == before["model"] and ck.config["model"]["hidden_size"] == 8
    assert ck.config["vectorizer"] == before["vectorizer"] and ck.config["labels"] == before["labels"]


def test_tag_resume_keeps_the_runs_vocabularies(tmp_path, files):
    out = tmp_path / "run"
    assert main(tag_args(files, out, "--char-encoder", "lstm", "--crf", "--max-steps", "3")) == 0
    before = load_checkpoint(out / "last.safetensors").config
    assert main(["train", "tag", "--out", str(out), "--resume", "--max-steps", "5", "--quiet"]) == 0
    ck = load_checkpoint(out / "last.safetensors")
    assert ck.state["trainer"]["global_step"] == 5
    assert ck.config["model"] == before["model"] and ck.config["model"]["crf"] is True
    assert ck.config["vocabs"] == before["vocabs"]


@pytest.fixture(scope="module")
def cut_run(tmp_path_factory, files):
    out = tmp_path_factory.mktemp("cut") / "run"
    assert main(classify_args(files, out, "--epochs", "2", "--max-steps", "3")) == 0
    return out


@pytest.mark.parametrize("option", [("--hidden-size", "32"), ("--tokens", "subword"), ("--lr", "0.1"),
                                    ("--batch-size", "8"), ("--train", "other")])
def test_a_contradicting_option_is_refused_in_one_line(tmp_path, capsys, files, cut_run, option):
    out = tmp_path / "run"
    shutil.copytree(cut_run, out)
    before = (out / "last.safetensors").read_bytes()
    name, value = option
    line = error_of(capsys, ["train", "classify", "--out", str(out), "--resume", name, files.get(value, value)])
    assert "cannot resume" in line and f"{name} " in line and "the run has" in line
    assert (out / "last.safetensors").read_bytes() == before


def test_the_same_option_value_is_accepted(tmp_path, files, cut_run):
    out = tmp_path / "run"
    shutil.copytree(cut_run, out)
    assert main(["train", "classify", "--out", str(out), "--resume", "--hidden-size", "16", "--max-steps", "4",
                 "--quiet"]) == 0
    assert trainer_state(out)["global_step"] == 4


def test_resume_refuses_another_tasks_run_and_a_spent_budget(tmp_path, capsys, files, cut_run):
    line = error_of(capsys, ["train", "tag", "--out", str(cut_run), "--resume"])
    assert "is a checkpoint of task 'classify', not of the tag task" in line
    line = error_of(capsys, ["train", "classify", "--out", str(cut_run), "--resume", "--max-steps", "3"])
    assert "already done its 3 updates" in line and "pass a larger --max-steps" in line
    line = error_of(capsys, ["train", "classify", "--out", str(tmp_path / "none"), "--resume"])
    assert "nothing to resume" in line
    assert "contradict" in error_of(capsys, ["train", "classify", "--out", str(cut_run), "--resume", "--overwrite"])


def test_a_finished_run_continues_with_more_epochs(tmp_path, capsys, files):
    out = tmp_path / "run"
    assert main(classify_args(files, out, "--epochs", "1")) == 0
    steps = trainer_state(out)["global_step"]
    capsys.readouterr()
    line = error_of(capsys, ["train", "classify", "--out", str(out), "--resume", "--epochs", "1"])
    assert "already done its 1 epochs" in line and "--epochs" in line
    assert main(["train", "classify", "--out", str(out), "--resume", "--epochs", "2", "--quiet"]) == 0
    state = trainer_state(out)
    assert state["epoch"] == 2 and state["global_step"] == 2 * steps and len(state["history"]) == 2


def test_a_task_that_cannot_resume_says_so(tmp_path, capsys):
    line = error_of(capsys, ["train", "forecast", "--out", str(tmp_path / "run"), "--resume"])
    assert "cannot --resume" in line
