"""charlm's AWD-LSTM regularisers: tied embeddings, embedding dropout, weight dropping (options and checkpoints)."""
import copy

import pytest
import torch

from rnnkit.models.charlm import CharLM, CharLMConfig
from rnnkit.tasks import charlm
from tests.helpers import error_of
from tests.test_charlm import structured_text, unigram_entropy


def model(**kw):
    torch.manual_seed(0)
    return CharLM(CharLMConfig(vocab_size=11, hidden_size=12, num_layers=2, embedding_dim=6, **kw))


def test_tied_output_layer_is_the_embedding_matrix_saved_once():
    m = model(tie_weights=True)
    assert m.head.weight is m.embed.weight
    assert "head.weight" not in m.state_dict() and "embed.weight" in m.state_dict()
    twin = copy.deepcopy(m)   # dynamic evaluation adapts a copy: the copy's head must share the copy's embedding
    assert twin.head.weight is twin.embed.weight and twin.embed is not m.embed
    ids = torch.randint(0, 6, (3, 9))                          # characters 6..10 never read
    logits, _ = m(ids)
    logits.square().sum().backward()
    # the embedding's gradient has an output-side part: rows of characters absent from the input still get one
    absent = torch.ones(11, dtype=torch.bool)
    absent[ids.flatten()] = False
    assert absent.any() and m.embed.weight.grad[absent].abs().sum() > 0
    untied = model()
    assert sum(p.numel() for p in untied.parameters()) > sum(p.numel() for p in m.parameters())


def test_embedding_dropout_drops_whole_characters_in_training_only():
    m = model(embedding_dropout=0.5)
    ids = torch.arange(11).repeat(4, 1)                       # every character, 4 times
    torch.manual_seed(3)
    x = m.train().inputs(ids)                                  # (4, 11, E)
    dropped = (x == 0).all(-1)                                 # (4, 11)
    assert dropped.any() and not dropped.all()
    assert (dropped == dropped[:1]).all()                      # one mask per batch: a character is dropped everywhere
    kept = ~dropped[0]
    torch.testing.assert_close(x[0, kept], 2 * m.embed.weight[kept])   # scaled by 1/(1-p)
    torch.testing.assert_close(m.eval().inputs(ids), m.embed(ids))


def test_weight_dropout_reaches_the_layers_and_is_off_in_eval():
    m = model(weight_dropout=0.4)
    assert m.rnn.weight_dropout == 0.4
    ids = torch.randint(0, 11, (2, 7))
    plain = model()
    plain.load_state_dict(m.state_dict())
    torch.testing.assert_close(m.eval()(ids)[0], plain.eval()(ids)[0], rtol=0, atol=0)
    m.train()
    assert not torch.equal(m(ids)[0], m(ids)[0])


def test_trained_with_every_regulariser_it_learns_and_reloads(tmp_path, capsys):
    from rnnkit.cli import main
    path = tmp_path / "words.txt"
    path.write_text(structured_text(), encoding="utf-8")
    assert main(["train", "charlm", "--text", str(path), "--hidden-size", "48", "--num-layers", "1",
                 "--batch-size", "8", "--seq-len", "32", "--lr", "0.01", "--max-steps", "150", "--minutes", "5",
                 "--out", str(tmp_path / "run"), "--quiet", "--sample-length", "0", "--tie-weights",
                 "--weight-dropout", "0.2", "--embedding-dropout", "0.05", "--dropout", "0.05"]) == 0
    m, vocab = charlm.load_model(str(tmp_path / "run" / "last.safetensors"))
    assert m.config.tie_weights and m.config.weight_dropout == 0.2 and m.head.weight is m.embed.weight
    text = path.read_text()
    val = text[-len(text) // 10:]
    assert charlm.evaluate(m, vocab, val)["loss"] < 0.8 * unigram_entropy(val)


@pytest.mark.parametrize("argv, expected", [
    (["--weight-dropout", "1"], "weight_dropout"),
    (["--tie-weights", "--onehot"], "tie_weights needs an embedding"),
    (["--cell", "mingru", "--weight-dropout", "0.2"], "does not have"),
    (["--backend", "scan"], "option backend"),
])
def test_bad_regulariser_options_are_one_line_errors(tmp_path, capsys, argv, expected):
    line = error_of(capsys, ["train", "charlm", "--out", str(tmp_path / "run"), *argv])
    assert expected in line
