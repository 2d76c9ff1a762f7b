"""The task contract end to end: classify and tag train from the CLI on built-in data and on user files in
every format, evaluate --json and predict from a checkpoint in a new process, and bad input gets one line."""
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from rnnkit.cli import main
from rnnkit.train import load_checkpoint

from helpers import error_of

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--minutes", "2", "--batch-size", "16", "--quiet"]
TINY_CLASSIFY = TINY + ["--embedding-dim", "16", "--hidden-size", "16"]
TINY_TAG = TINY + ["--word-dim", "16", "--char-size", "16", "--char-dim", "8", "--hidden-size", "16"]


def cli(*args, stdin=None):
    """rnnkit in a new process: (status, stdout, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "rnnkit.cli", *args], capture_output=True, text=True, env=env,
                       input=stdin, timeout=300)
    return p.returncode, p.stdout, p.stderr


# ---- data files -----------------------------------------------------------------------------------

FILLER = "the a film story plot actor scene was is it this that and of movie".split()


def sentiment_rows(n, seed):
    """A learnable toy sentiment set: the label is which cue word the text holds, amid filler."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.choice(["pos", "neg"])
        words = rng.sample(FILLER, 6)
        words.insert(rng.randrange(7), rng.choice(["great", "wonderful"] if label == "pos" else ["awful", "dull"]))
        rows.append((" ".join(words), label))
    return rows


def write_table(path, rows, fmt, text="text", label="label"):
    if fmt == "jsonl":
        path.write_text("".join(json.dumps({text: t, label: y}) + "\n" for t, y in rows))
    else:
        sep = "\t" if fmt == "tsv" else ","
        path.write_text(f"{label}{sep}{text}\n" + "".join(f"{y}{sep}{t}\n" for t, y in rows))
    return str(path)


def bio_sentences(n, seed):
    """Toy NER: capitalised names after 'mr' are PER spans, city names LOC."""
    rng = random.Random(seed)
    sents = []
    for _ in range(n):
        toks, tags = [], []
        for _ in range(rng.randint(3, 7)):
            r = rng.random()
            if r < 0.25:
                toks += ["mr", rng.choice(["Smith", "Jones", "Brown"]), rng.choice(["Jr", "Sr"])]
                tags += ["O", "B-PER", "I-PER"]
            elif r < 0.4:
                toks.append(rng.choice(["Paris", "Rome", "Oslo"]))
                tags.append("B-LOC")
            else:
                toks.append(rng.choice(FILLER))
                tags.append("O")
        sents.append((toks, tags))
    return sents


def write_columns(path, sents):
    path.write_text("".join("".join(f"{w} {t}\n" for w, t in zip(*s)) + "\n" for s in sents))
    return str(path)


def write_conllu(path, sents):
    lines = []
    for k, (toks, tags) in enumerate(sents):
        lines.append(f"# sent_id = {k}")
        lines += [f"{i}\t{w}\t{w.lower()}\t{t}\t_\t_\t{max(i - 1, 0)}\t{'root' if i == 1 else 'dep'}\t_\t_"
                  for i, (w, t) in enumerate(zip(toks, tags), 1)]
        lines.append("")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def pos_sentences(n, seed):
    rng = random.Random(seed)
    lex = {"DET": ["the", "a"], "NOUN": ["dog", "cat", "park", "ball"], "VERB": ["sees", "chases", "likes"],
           "ADJ": ["big", "red"]}
    sents = []
    for _ in range(n):
        pattern = ["DET", "NOUN", "VERB", "DET", "ADJ", "NOUN"][:rng.choice([3, 5, 6])]
        sents.append(([rng.choice(lex[p]) for p in pattern], pattern))
    return sents


# ---- classify -------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_classify_learns_from_each_format(tmp_path, capsys, fmt):
    train = write_table(tmp_path / f"train.{fmt}", sentiment_rows(300, 0), fmt)
    valid = write_table(tmp_path / f"valid.{fmt}", sentiment_rows(60, 1), fmt)
    out = tmp_path / "run"
    assert main(["train", "classify", "--train", train, "--valid", valid, "--epochs", "6", "--out", str(out),
                 "--lr", "0.01", *TINY_CLASSIFY]) == 0
    text = capsys.readouterr().out
    assert "best checkpoint" in text and "confusion matrix" in text
    history = json.loads((out / "history.json").read_text())
    assert max(r["val_acc"] for r in history) >= 0.95      # the cue word decides: it learned it
    assert (out / "confusion_matrix.png").stat().st_size > 1000
    ck = load_checkpoint(out / "best.safetensors")
    assert ck.config["task"] == "classify" and ck.config["labels"] == ["neg", "pos"]
    assert "great" in ck.config["vectorizer"]["vocabulary"]


def test_classify_evaluate_json_and_predict_in_a_new_process(tmp_path):
    train = write_table(tmp_path / "train.csv", sentiment_rows(300, 0), "csv")
    test = write_table(tmp_path / "test.jsonl", sentiment_rows(40, 2), "jsonl")
    out = tmp_path / "run"
    assert main(["train", "classify", "--train", train, "--epochs", "6", "--lr", "0.01", "--out", str(out),
                 "--pooling", "attention", "--tokens", "char", *TINY_CLASSIFY]) == 0
    status, stdout, stderr = cli("evaluate", "--checkpoint", str(out / "best.safetensors"), "--data", test, "--json")
    assert status == 0, stderr
    result = json.loads(stdout)                       # one JSON object, nothing else on stdout
    assert set(result) >= {"accuracy", "macro_f1", "per_class", "confusion_matrix"}
    assert result["examples"] == 40 and sum(map(sum, result["confusion_matrix"])) == 40
    assert result["per_class"]["pos"]["support"] + result["per_class"]["neg"]["support"] == 40
    status, stdout, stderr = cli("predict", "--checkpoint", str(out / "best.safetensors"), "-",
                                 stdin="a great film\nthe dull story\nwhat\n")
    assert status == 0, stderr
    assert stdout.splitlines()[:2] == ["pos", "neg"] and len(stdout.splitlines()) == 3


def test_classify_integer_labels_named_columns_and_subwords(tmp_path, capsys):
    pytest.importorskip("tokenizers")
    rows = [(t, "1" if y == "pos" else "0") for t, y in sentiment_rows(200, 3)]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"body": t, "stars": int(y)}) + "\n" for t, y in rows))
    out = tmp_path / "run"
    assert main(["train", "classify", "--train", str(path), "--text-column", "body", "--label-column", "stars",
                 "--tokens", "subword", "--max-tokens", "200", "--epochs", "1", "--out", str(out), *TINY_CLASSIFY]) == 0
    ck = load_checkpoint(out / "best.safetensors")
    assert ck.config["labels"] == ["0", "1"] and ck.config["vectorizer"]["subword"]


def test_classify_builtin_data(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "classify", "--max-steps", "20", "--out", str(out), *TINY_CLASSIFY]) == 0
    assert "python runtime services" in load_checkpoint(out / "best.safetensors").config["labels"]


# ---- tag ------------------------------------------------------------------------------------------

def test_tag_two_column_bio_with_crf_span_f1_and_predict(tmp_path, capsys):
    train = write_columns(tmp_path / "train.txt", bio_sentences(200, 0))
    test = write_columns(tmp_path / "test.txt", bio_sentences(40, 1))
    out = tmp_path / "run"
    assert main(["train", "tag", "--train", train, "--crf", "--epochs", "8", "--lr", "0.01", "--out", str(out),
                 *TINY_TAG]) == 0
    assert "spans: precision" in capsys.readouterr().out
    status, stdout, stderr = cli("evaluate", "--checkpoint", str(out / "best.safetensors"), "--data", test, "--json")
    assert status == 0, stderr
    result = json.loads(stdout)
    assert result["token_accuracy"] > 0.9 and result["span_f1"] > 0.8
    tokens_only = tmp_path / "in.tsv"
    tokens_only.write_text("mr\nSmith\nJr\nvisits\nOslo\n\nthe\nfilm\n")
    status, stdout, stderr = cli("predict", "--checkpoint", str(out / "best.safetensors"), str(tokens_only))
    assert status == 0, stderr
    blocks = stdout.strip().split("\n\n")
    assert len(blocks) == 2 and [line.split("\t")[0] for line in blocks[0].splitlines()] == \
        ["mr", "Smith", "Jr", "visits", "Oslo"]
    assert blocks[0].splitlines()[1].split("\t")[1] == "B-PER"


def test_tag_conllu_learns_upos_and_predict_fills_the_column(tmp_path, capsys):
    train = write_conllu(tmp_path / "train.conllu", pos_sentences(150, 0))
    test = write_conllu(tmp_path / "test.conllu", pos_sentences(30, 1))
    out = tmp_path / "run"
    assert main(["train", "tag", "--train", train, "--epochs", "6", "--lr", "0.01", "--out", str(out),
                 "--char-encoder", "lstm", *TINY_TAG]) == 0
    status, stdout, stderr = cli("evaluate", "--checkpoint", str(out / "best.safetensors"), "--data", test, "--json")
    assert status == 0, stderr
    result = json.loads(stdout)
    assert result["token_accuracy"] > 0.95 and "span_f1" not in result
    blank = (tmp_path / "test.conllu").read_text().replace("\tDET\t", "\t_\t").replace("\tNOUN\t", "\t_\t")
    status, stdout, stderr = cli("predict", "--checkpoint", str(out / "best.safetensors"), "-", stdin=blank)
    assert status == 0, stderr
    import conllu
    predicted = [t["upos"] for s in conllu.parse(stdout) for t in s]
    gold = [t["upos"] for s in conllu.parse((tmp_path / "test.conllu").read_text()) for t in s]
    assert sum(p == g for p, g in zip(predicted, gold)) / len(gold) > 0.95


def test_tag_builtin_data(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "tag", "--max-steps", "10", "--out", str(out), *TINY_TAG]) == 0
    tags = load_checkpoint(out / "best.safetensors").config["vocabs"]["tags"]
    assert {"PARAM", "LOCAL", "ATTR", "CLASS"} <= set(tags)
    assert "on the" in capsys.readouterr().out


# ---- charlm accepts the contract's names -----------------------------------------------------------

def test_charlm_accepts_train_and_valid(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("abcabcabd " * 200)
    (tmp_path / "b.txt").write_text("abcabd " * 30)
    out = tmp_path / "run"
    assert main(["train", "charlm", "--train", str(tmp_path / "a.txt"), "--valid", str(tmp_path / "b.txt"),
                 "--epochs", "1", "--hidden-size", "8", "--embedding-dim", "4", "--batch-size", "4", "--seq-len",
                 "20", "--sample-length", "0", "--quiet", "--out", str(out)]) == 0
    rows = json.loads((out / "history.json").read_text())
    assert rows[-1]["val_loss"] > 0
    status, stdout, _ = cli("evaluate", "--checkpoint", str(out / "best.safetensors"), "--data",
                            str(tmp_path / "b.txt"), "--json")
    assert status == 0 and json.loads(stdout)["characters"] == len("abcabd " * 30) - 1


# ---- bad input: one line, status 2 ----------------------------------------------------------------

def test_bad_inputs_get_one_line(tmp_path, capsys):
    header_only = tmp_path / "h.csv"
    header_only.write_text("text,label\n")
    assert "has no rows" in error_of(capsys, ["train", "classify", "--train", str(header_only)])
    no_label = tmp_path / "n.csv"
    no_label.write_text("text,stars\nfine,1\nbad,0\n")
    assert "no label column" in error_of(capsys, ["train", "classify", "--train", str(no_label)])
    assert "no column 'body'" in error_of(capsys, ["train", "classify", "--train", str(no_label),
                                                   "--text-column", "body"])
    one = tmp_path / "one.tsv"
    one.write_text("text\tlabel\na\tx\nb\tx\n")
    assert "one label only" in error_of(capsys, ["train", "classify", "--train", str(one)])
    ragged = tmp_path / "r.csv"
    ragged.write_text("text,label\nfine,1\nbad\n")
    assert "line 3" in error_of(capsys, ["train", "classify", "--train", str(ragged)])
    bad_json = tmp_path / "b.jsonl"
    bad_json.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": \n')
    assert "line 2: not valid JSON" in error_of(capsys, ["train", "classify", "--train", str(bad_json)])
    conllu = tmp_path / "bad.conllu"
    conllu.write_text("# c\n1\tThe\tthe\tDET\t_\t_\t2\tdet\t_\t_\n2\tdog\tdog\tNOUN\t_\t_\t0\n\n")
    assert "line 3: malformed CoNLL-U line" in error_of(capsys, ["train", "tag", "--train", str(conllu)])
    columns = tmp_path / "c.txt"
    columns.write_text("the O\nParis B-LOC\nsees\n\n")
    assert "line 3: a token without a tag" in error_of(capsys, ["train", "tag", "--train", str(columns)])
    assert "--train file not found" in error_of(capsys, ["train", "classify", "--train", str(tmp_path / "no.csv")])
    assert "dropout must be in" in error_of(capsys, ["train", "classify", "--dropout", "1.5"])


def test_unknown_labels_in_the_evaluation_file_are_reported(tmp_path, capsys):
    train = write_table(tmp_path / "train.csv", sentiment_rows(100, 0), "csv")
    out = tmp_path / "run"
    assert main(["train", "classify", "--train", train, "--epochs", "1", "--out", str(out), *TINY_CLASSIFY]) == 0
    capsys.readouterr()
    other = write_table(tmp_path / "e.csv", [("a great film", "pos"), ("so so", "meh")], "csv")
    line = error_of(capsys, ["evaluate", "--checkpoint", str(out / "best.safetensors"), "--data", other])
    assert "labels the checkpoint does not know: 'meh'" in line
    assert "evaluate needs --data" in error_of(capsys, ["evaluate", "--checkpoint", str(out / "best.safetensors")])
    png = tmp_path / "cm.png"
    assert main(["evaluate", "--checkpoint", str(out / "best.safetensors"), "--data", train, "--png", str(png)]) == 0
    assert "accuracy" in capsys.readouterr().out and png.stat().st_size > 1000


def test_contract_checks_the_output_directory_before_any_work(tmp_path, capsys, monkeypatch):
    """Every contract task refuses an --out it cannot use, and a previous run's directory without --overwrite,
    before reading or training anything (the trust checks of tasks/options.py, once, in contract.start)."""
    import rnnkit.tasks.contract as contract
    monkeypatch.setattr(contract, "train", lambda *a, **k: pytest.fail("trained despite a bad --out"))
    train = write_table(tmp_path / "train.csv", sentiment_rows(100, 0), "csv")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for task in ("classify", "tag", "forecast", "caption", "seq2seq", "charlm", "adding", "copy"):
        assert "is a file" in error_of(capsys, ["train", task, "--out", str(a_file)])
        assert "which is a file" in error_of(capsys, ["train", task, "--out", str(a_file / "run")])
    previous = tmp_path / "previous"
    previous.mkdir()
    (previous / "best.safetensors").write_bytes(b"a previous run")
    assert "--overwrite" in error_of(capsys, ["train", "classify", "--train", train, "--out", str(previous)])
    assert (previous / "best.safetensors").read_bytes() == b"a previous run"
    assert "lr must be a finite number" in error_of(capsys, ["train", "classify", "--lr", "nan"])
