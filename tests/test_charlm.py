"""The character-level language model task: it learns, samples reproducibly, and rejects bad input."""
import io
import math
from collections import Counter

import pytest
import torch

from rnnkit.cli import main
from rnnkit.data.text import UNK, Vocabulary, builtin_corpus
from rnnkit.errors import UserError
from rnnkit.tasks import charlm

WORDS = ("the cat sat on the mat . a dog ran to the red door . my hat is on the cat . "
         "we saw a big dog and a small cat . ").split()


def structured_text(n_words=3000, seed=0) -> str:
    """Words drawn from a small vocabulary: far more predictable per character than per letter frequency."""
    g = torch.Generator().manual_seed(seed)
    picks = torch.randint(0, len(WORDS), (n_words,), generator=g)
    return " ".join(WORDS[i] for i in picks) + "\n"


def unigram_entropy(text: str) -> float:
    """Entropy in nats of the character frequencies of ``text``: the best loss without context."""
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log(c / n) for c in counts.values())


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "words.txt"
    path.write_text(structured_text(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(text_file, tmp_path_factory):
    """One small trained model, shared by the generation and evaluation tests."""
    out = tmp_path_factory.mktemp("run")
    train(text_file, out)
    return out


def train(text_file, out, *extra):
    args = ["train", "charlm", "--text", str(text_file), "--hidden-size", "48", "--num-layers", "1",
            "--batch-size", "8", "--seq-len", "32", "--lr", "0.01", "--max-steps", "150", "--minutes", "5",
            "--precision", "fp32", "--out", str(out), "--quiet", "--sample-length", "0", *extra]
    assert main(args) == 0   # fp32 unless extra says otherwise: the default (auto) depends on the CPU


@pytest.mark.parametrize("inputs", [[], ["--onehot"], ["--precision", "bf16"]], ids=["embedding", "onehot", "bf16"])
def test_end_to_end_learns_below_unigram_entropy(text_file, tmp_path, capsys, inputs):
    train(text_file, tmp_path / "run", *inputs)
    model, vocab = charlm.load_model(str(tmp_path / "run" / "last.safetensors"))
    assert (model.embed is None) == ("--onehot" in inputs)
    text = text_file.read_text()
    val = text[-int(len(text) * 0.1):]
    result = charlm.evaluate(model, vocab, val)
    assert result["loss"] < 0.8 * unigram_entropy(val), (result, unigram_entropy(val))
    assert result["bpc"] == pytest.approx(result["loss"] / math.log(2))
    printed = capsys.readouterr().out
    assert f"{result['loss']:.4f} nats/char" in printed   # the task reports the same figure evaluate computes


def test_generate_is_reproducible_and_accepts_unseen_characters(trained, capsys):
    ck = str(trained / "last.safetensors")
    outputs = []
    for seed in (3, 3, 4):
        capsys.readouterr()
        assert main(["generate", "--checkpoint", ck, "--prime", "the ∑ cat", "--length", "80",
                     "--seed", str(seed), "--top-k", "5"]) == 0
        captured = capsys.readouterr()
        outputs.append(captured.out)
        assert "unseen" in captured.err and "∑" in captured.err
    assert outputs[0] == outputs[1] != outputs[2]
    assert outputs[0].startswith("the ∑ cat") and len(outputs[0]) == len("the ∑ cat") + 80 + 1


def test_generation_uses_the_carried_state(trained):
    """Step-by-step generation equals re-running the whole prefix (greedy decoding)."""
    model, vocab = charlm.load_model(str(trained / "last.safetensors"))
    text = charlm.generate(model, vocab, "the ", 30, temperature=0, stream=io.StringIO())
    prefix = "the "
    for char in text:
        logits, _ = model(vocab.encode(prefix)[None])
        assert vocab.chars[int(logits[0, -1].argmax())] == char
        prefix += char


def test_evaluate_command(trained, tmp_path, capsys):
    other = tmp_path / "other.txt"
    text = "the cat sat on the mat. ünïcode ☃\n" * 20
    other.write_text(text, encoding="utf-8")
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(trained / "best.safetensors"), "--text", str(other)]) == 0
    out = capsys.readouterr().out
    model, vocab = charlm.load_model(str(trained / "best.safetensors"))
    r = charlm.evaluate(model, vocab, text)
    assert len(text) - 16 <= r["characters"] <= len(text) - 1   # every stream's last character has no target
    assert r["perplexity"] == pytest.approx(math.exp(r["loss"])) and r["loss"] > 0
    unseen = len(vocab.unknown(text))
    assert unseen >= 3   # ü, ï, ☃
    assert (f"{r['characters']:,} characters: loss {r['loss']:.4f} nats/char, {r['bpc']:.4f} bits/char, "
            f"perplexity {r['perplexity']:.3f} ({unseen} distinct characters unseen in training)") in out


def test_vocabulary_maps_unseen_characters_to_unk():
    vocab = Vocabulary.build("abca")
    assert vocab.chars[0] == UNK and len(vocab) == 4
    assert vocab.decode(vocab.encode("abz")) == "ab" + UNK
    assert vocab.unknown("abz") == {"z"}


def test_builtin_corpus_is_english_text_from_the_standard_library():
    text = builtin_corpus()
    assert len(text) > 400_000 and text.count(" the ") > 1000


def one_line_error(capsys, argv, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("rnnkit: error:") and fragment in err, err


@pytest.mark.parametrize("bf16,given,expected", [
    (True, {}, ("lstm", 0.25, "bf16")), (True, {"minutes": 3}, ("lstm", 0.25, "bf16")),   # the measured defaults
    (False, {}, ("lstm", 0.1, "fp32")), (False, {"minutes": 3}, ("gru", 0.0, "fp32")),   # fp32: by the budget
    (False, {"minutes": 9.9}, ("gru", 0.0, "fp32")), (False, {"minutes": 30}, ("lstm", 0.1, "fp32")),
    (False, {"cell": "lstm", "minutes": 3}, ("lstm", 0.1, "fp32")), (True, {"cell": "gru"}, ("gru", 0.0, "bf16")),
    (False, {"precision": "bf16", "minutes": 3}, ("lstm", 0.25, "bf16")),
    (True, {"precision": "fp32", "minutes": 3}, ("gru", 0.0, "fp32")),
    (True, {"dropout": 0.0}, ("lstm", 0.0, "bf16")), (False, {"cell": "rnn"}, ("rnn", 0.0, "fp32")),
    (False, {"cell": "gru", "dropout": 0.3}, ("gru", 0.3, "fp32"))])
def test_auto_cell_dropout_and_precision_are_the_measured_best(monkeypatch, bf16, given, expected):
    """--precision auto, --cell auto and the default dropout (benchmarks/charlm.md): the LSTM with dropout 0.25 and
    batches of 32 where the CPU computes bf16; in fp32 the GRU without dropout under 10 minutes, else the LSTM with
    dropout 0.1, both on batches of 64; a value the user gives is kept. All are resolved in the options, so the
    checkpoint records them."""
    monkeypatch.setattr(charlm, "native_bf16", lambda: bf16)
    o = charlm.Options(**given)
    assert (o.cell, o.dropout, o.precision) == expected
    assert o.weight_decay == (0.1 if o.cell == "lstm" else 0.0)   # measured with the LSTM and AdamW
    assert o.batch_size == (32 if (o.cell, o.precision) == ("lstm", "bf16") else 64)
    assert charlm.Options(**given, batch_size=16).batch_size == 16


def test_default_weight_decay_is_for_adamw_and_the_lstm_only():
    assert charlm.Options(cell="lstm", optimizer="adam").weight_decay == 0.0   # adam's decay is L2: not measured
    assert charlm.Options(cell="lstm", weight_decay=0.0).weight_decay == 0.0
    assert charlm.Options(cell="gru", weight_decay=0.3).weight_decay == 0.3


def test_shift_and_beta_2_reach_the_training(tmp_path, monkeypatch):
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. " * 50)
    made, real = [], charlm.StreamBatches
    monkeypatch.setattr(charlm, "StreamBatches", lambda *a, **k: made.append(k) or real(*a, **k))
    o = charlm.Options(text=[str(text)], hidden_size=8, batch_size=2, seq_len=8, max_steps=1, shift=True,
                       beta_2=0.99, out=str(tmp_path / "run"), sample_length=0, quiet=True)
    _, trainer, *_ = charlm.fit(o)
    assert trainer.optimizer.param_groups[0]["betas"] == (0.9, 0.99)
    assert [k.get("shift") for k in made if k.get("drop_last")] == [True]   # the training batches, not validation


@pytest.mark.parametrize("zoneout, says", [(0.1, True), (0.0, False)])
def test_the_runs_line_says_when_bf16_leaves_the_recurrence_in_float32(tmp_path, capsys, zoneout, says):
    """Zoneout runs on the native kernel, which computes in float32 under bf16 autocast: the line must say so."""
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. " * 50)
    o = charlm.Options(text=[str(text)], cell="lstm", hidden_size=8, batch_size=2, seq_len=8, max_steps=1,
                       zoneout=zoneout, precision="bf16", out=str(tmp_path / "run"), sample_length=0, quiet=True)
    _, _, model, *_ = charlm.fit(o)
    line = next(x for x in capsys.readouterr().err.splitlines() if x.startswith("charlm:"))
    assert (model.rnn.backend == "native") == says
    assert line.endswith(f"backend {model.rnn.backend}, bf16" + (" (the native kernel's recurrence stays float32)"
                                                                   if says else ""))


def test_beta_2_is_refused_for_an_optimizer_without_it():
    assert charlm.Options(beta_2=0.99).beta_2 == 0.99
    with pytest.raises(UserError, match="option beta_2 is a setting of adam and adamw, not of sgd"):
        charlm.Options(optimizer="sgd", beta_2=0.99)


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\xe9 au lait ".encode("latin-1") * 50)
    short = tmp_path / "short.txt"
    short.write_text("just a few words\n")
    train = ["train", "charlm", "--quiet", "--minutes", "0.1", "--out", str(tmp_path / "run"), "--text"]
    one_line_error(capsys, train + [str(empty)], "empty")
    one_line_error(capsys, train + [str(binary)], "binary")
    one_line_error(capsys, train + [str(latin)], "not UTF-8")
    one_line_error(capsys, train + [str(short)], "too short")
    one_line_error(capsys, train + [str(tmp_path / "nope.txt")], "not found")
    one_line_error(capsys, ["generate", "--checkpoint", str(tmp_path / "missing.safetensors")], "not found")
    one_line_error(capsys, ["evaluate", "--checkpoint", str(tmp_path / "missing.safetensors"),
                            "--text", str(short)], "not found")
    one_line_error(capsys, ["generate", "--checkpoint", str(binary)], "corrupt")


def test_shift_needs_room_for_every_offset(tmp_path, capsys):
    """--shift starts an epoch up to seq_len - 1 characters late: a text with room for one batch at offset 0 only
    is refused before training (else the epoch would hold no batch), with a held-out part and with --valid."""
    text, valid = tmp_path / "text.txt", tmp_path / "valid.txt"
    text.write_text("abcdefghijklmnopqrstuvwxyz"[:2 * 5 + 1])   # batch_size x seq_len + 1
    valid.write_text("the held-out text")
    run = ["train", "charlm", "--quiet", "--text", str(text), "--valid", str(valid), "--batch-size", "2",
           "--seq-len", "5", "--hidden-size", "8", "--max-steps", "1", "--sample-length", "0"]
    assert main(run + ["--out", str(tmp_path / "fits")]) == 0
    capsys.readouterr()
    one_line_error(capsys, run + ["--out", str(tmp_path / "shifted"), "--shift"], "seq_len - 1 for --shift")
    text.write_text("x" * 12 + "y" * 3)   # 12 to train, 3 held out: room for 2 x 5 at offset 0, not at offset 4
    split = ["train", "charlm", "--quiet", "--text", str(text), "--batch-size", "2", "--seq-len", "5",
             "--val-fraction", "0.2", "--hidden-size", "8", "--max-steps", "1", "--sample-length", "0"]
    assert main(split + ["--out", str(tmp_path / "split")]) == 0
    capsys.readouterr()
    one_line_error(capsys, split + ["--out", str(tmp_path / "split-shifted"), "--shift"],
                   "seq_len - 1 more with --shift")


def word_entropy_per_char() -> float:
    """The lowest expected loss on structured_text: words are drawn independently, so only the choice of each
    word is uncertain; its entropy (nats) spread over the word's characters and its space."""
    counts = Counter(WORDS)
    n = len(WORDS)
    entropy = -sum(c / n * math.log(c / n) for c in counts.values())
    return entropy / sum((len(w) + 1) * c / n for w, c in counts.items())


@pytest.mark.slow
def test_a_minute_of_training_reaches_the_entropy_of_held_out_text(tmp_path, capsys):
    """The long end-to-end run (python -m pytest -m slow; about a minute on 2 idle cores): 1200 updates of a
    128-unit GRU on 70,000 characters of word salad. On text drawn anew (another seed) the loss comes within 5%
    of the lowest possible (the word-choice entropy, 0.815 nats/char; the unigram entropy is about 2.5), and
    the sample is made of real words."""
    path = tmp_path / "words.txt"
    path.write_text(structured_text(20000), encoding="utf-8")
    assert main(["train", "charlm", "--text", str(path), "--cell", "gru", "--dropout", "0", "--precision", "fp32",
                 "--hidden-size", "128", "--num-layers", "1",
                 "--batch-size", "32", "--seq-len", "64", "--max-steps", "1200", "--minutes", "60", "--quiet",
                 "--sample-length", "300", "--out", str(tmp_path / "run")]) == 0
    sample = capsys.readouterr().out.split("sample:\n", 1)[1]
    model, vocab = charlm.load_model(str(tmp_path / "run" / "last.safetensors"))
    result = charlm.evaluate(model, vocab, structured_text(5000, seed=1))
    assert result["loss"] < 1.05 * word_entropy_per_char(), result
    words = sample.split()[1:-1]   # the first and last may be cut
    assert sum(w in WORDS for w in words) >= 0.95 * len(words), sample


def test_load_model_builds_the_model_once_with_the_saved_weights(tmp_path, monkeypatch):
    """load_model builds the CharLM once (on the meta device) and gives it the saved tensors: no second build
    with a random initialisation to throw away."""
    from rnnkit.models import charlm as charlm_models
    from rnnkit.train.checkpoint import save_checkpoint
    torch.manual_seed(0)
    vocab = Vocabulary.build("the cat sat on the mat\n")
    saved = charlm_models.CharLM(charlm_models.CharLMConfig(len(vocab), "gru", hidden_size=12, num_layers=2,
                                                            embedding_dim=6, tie_weights=True))
    path = tmp_path / "lm.safetensors"
    save_checkpoint(path, saved.state_dict(), config={"task": "charlm", "model": saved.config.to_dict(),
                                                      "vocab": list(vocab.chars), "options": {}})
    builds = []
    init = charlm_models.CharLM.__init__

    def counted(self, *args, **kwargs):
        builds.append(1)
        init(self, *args, **kwargs)
    monkeypatch.setattr(charlm_models.CharLM, "__init__", counted)
    model, loaded_vocab = charlm.load_model(str(path))
    assert len(builds) == 1
    assert loaded_vocab.chars == vocab.chars and not model.training
    for (name, p), q in zip(model.state_dict().items(), saved.state_dict().values()):
        assert p.device.type == "cpu" and torch.equal(p, q), name
    assert model.head.weight is model.embed.weight   # still tied
    ids = vocab.encode("the mat")[None]
    with torch.no_grad():
        torch.testing.assert_close(model(ids)[0], saved.eval()(ids)[0])
    with torch.no_grad():
        next(model.parameters()).add_(1.0)   # the weights are the model's own, writable
