"""Dynamic evaluation (train/dynamic.py, rnnkit evaluate --dynamic): it adapts, it is labelled, it changes nothing saved."""
import hashlib
import json

import pytest
import torch

from rnnkit.cli import main
from rnnkit.models.charlm import CharLM, CharLMConfig
from rnnkit.tasks import charlm
from rnnkit.train.dynamic import DynamicEvalConfig, dynamic_evaluate
from tests.helpers import error_of

REPEATED = "to be or not to be, that is the question. " * 60   # a text that repeats: adaptation pays


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A barely trained model on other text, so the repeated phrase is new to it."""
    root = tmp_path_factory.mktemp("dyn")
    (root / "train.txt").write_text("a quick brown fox jumps over the lazy dog; " * 40 + "the end.\n")
    assert main(["train", "charlm", "--text", str(root / "train.txt"), "--hidden-size", "32", "--num-layers", "1",
                 "--embedding-dim", "16", "--batch-size", "4", "--seq-len", "32", "--max-steps", "20",
                 "--out", str(root / "run"), "--quiet", "--sample-length", "0"]) == 0
    (root / "repeated.txt").write_text(REPEATED)
    return root


@pytest.mark.parametrize("config", [DynamicEvalConfig("sgd", lr=0.3, segment=20),
                                    DynamicEvalConfig("rms", lr=3e-3, decay=0.01, segment=20)], ids=["sgd", "rms"])
def test_dynamic_evaluation_lowers_the_loss_on_a_repetitive_text_and_leaves_the_model_alone(checkpoint, config):
    model, vocab = charlm.load_model(str(checkpoint / "run" / "last.safetensors"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    static = charlm.evaluate(model, vocab, REPEATED)["loss"]
    dynamic = charlm.evaluate_dynamic(model, vocab, REPEATED, config)
    assert dynamic["dynamic_loss"] < 0.7 * static, (dynamic, static)
    assert dynamic["dynamic_characters"] == len(REPEATED) - 1
    assert dynamic["dynamic_updates"] == -(-(len(REPEATED) - 1) // config.segment)
    for k, v in model.state_dict().items():   # the caller's model: not one weight moved
        assert torch.equal(v, before[k]), k
    assert not model.training


def test_every_character_is_scored_before_the_weights_see_it():
    """A first segment is scored by the saved weights: the dynamic loss of one segment is the static loss."""
    torch.manual_seed(0)
    model = CharLM(CharLMConfig(vocab_size=5, hidden_size=8, num_layers=1, embedding_dim=4)).eval()
    ids = torch.randint(0, 5, (30,))
    one = dynamic_evaluate(model, ids, DynamicEvalConfig("sgd", lr=10.0, segment=40))
    with torch.no_grad():
        logits, _ = model(ids[None, :-1])
    static = torch.nn.functional.cross_entropy(logits[0], ids[1:])
    assert one["loss"] == pytest.approx(float(static), rel=1e-6)
    two = dynamic_evaluate(model, ids, DynamicEvalConfig("sgd", lr=10.0, segment=15))
    assert two["loss"] != pytest.approx(float(static), rel=1e-3)   # the second half saw adapted weights


def test_cli_reports_both_figures_apart_and_the_checkpoint_file_is_unchanged(checkpoint, capsys):
    ck = checkpoint / "run" / "last.safetensors"
    text = str(checkpoint / "repeated.txt")
    before = digest(ck)
    assert main(["evaluate", "--checkpoint", str(ck), "--text", text, "--json"]) == 0
    static = json.loads(capsys.readouterr().out)
    assert main(["evaluate", "--checkpoint", str(ck), "--text", text, "--json", "--dynamic",
                 "--dynamic-method", "sgd", "--dynamic-lr", "0.3", "--dynamic-segment", "20"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert both["loss"] == static["loss"]   # the static figure is not touched by --dynamic
    assert both["dynamic_loss"] < both["loss"] and both["dynamic_method"] == "sgd"
    assert digest(ck) == before
    assert main(["evaluate", "--checkpoint", str(ck), "--text", text, "--dynamic"]) == 0
    out = capsys.readouterr().out
    assert "dynamic evaluation" in out and "a different metric" in out
    assert digest(ck) == before


@pytest.mark.parametrize("argv, expected", [
    (["--dynamic", "--dynamic-lr", "0"], "lr must be in (0, inf)"),
    (["--dynamic", "--dynamic-decay", "1.5"], "decay must be in [0, 1]"),
    (["--dynamic", "--dynamic-segment", "0"], "segment must be an integer"),
    (["--dynamic-lr", "0.1"], "--dynamic-lr needs --dynamic"),
])
def test_bad_options_are_refused_before_any_work(tmp_path, capsys, argv, expected):
    # the checkpoint does not even exist: the options are checked first
    line = error_of(capsys, ["evaluate", "--checkpoint", str(tmp_path / "none.safetensors"),
                             "--text", str(tmp_path / "none.txt"), *argv])
    assert expected in line
