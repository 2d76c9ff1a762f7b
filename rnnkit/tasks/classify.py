"""text classification: read a text, predict its label (sentiment, topic, intent...)

Input: CSV or TSV with a header row, or JSON Lines; the text and label columns
are found by name (text/sentence/review..., label/class/category...) or named
with --text-column / --label-column. Labels are strings or integers, two or
more classes. Without --train it learns the built-in set: docstrings of the
Python standard library labelled with the Library Reference chapter of their
module (rnnkit.data.builtin). Tokens are words by default, or characters, or
a WordPiece subword vocabulary learned from the training file.

Metrics (scikit-learn): accuracy, macro-F1, per-class precision and recall, and
the confusion matrix, printed and saved as OUT/confusion_matrix.png. The
defaults were chosen by measurement (benchmarks/classify.md).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data.builtin import stdlib_docstrings
from ..data.padded import PaddedBatches
from ..data.tabular import label_order, read_labelled, read_unlabelled
from ..data.vectorizer import TextVectorizer, pad
from ..errors import UserError
from ..models.classifier import CELLS, POOLINGS, ClassifierConfig, TextClassifier
from ..train import StepOutput, restore_model
from . import contract
from .options import option

TOKENS = {"word": "word", "char": "character", "subword": "subword"}


@dataclass
class Options(contract.TaskOptions):
    text_column: str | None = option(None, "name of the text column (default: found by name)", "data")
    label_column: str | None = option(None, "name of the label column (default: found by name)", "data")
    tokens: str = option("word", "tokenization: words, characters, or subwords learned from --train", "data",
                         choices=tuple(TOKENS))
    max_tokens: int = option(20000, "vocabulary size, padding and unknown included", "data")
    max_length: int = option(400, "tokens read per text (the rest is cut)", "data")
    lowercase: bool = option(True, "lowercase the text first", "data")
    cell: str = option("gru", "recurrent cell", "model", choices=tuple(sorted(CELLS)))
    embedding_dim: int = option(128, "token embedding size", "model")
    hidden_size: int = option(128, "units per layer and direction", "model")
    num_layers: int = option(1, "stacked recurrent layers", "model")
    bidirectional: bool = option(True, "read the text in both directions", "model")
    pooling: str = option("max", "how the states become one vector", "model", choices=POOLINGS)
    dropout: float = option(0.3, "dropout on embeddings, between layers and before the output", "model")
    word_dropout: float = option(0.0, "in training, replace a token by the unknown token with this probability, "
                                      "so the model learns what to make of unknown words", "model")
    patience: int | None = contract.shared("patience", 3)
    out: str = contract.shared("out", "runs/classify", "directory for checkpoints, history and figures")

    def __post_init__(self):
        super().__post_init__()
        for name in ("max_tokens", "max_length", "embedding_dim", "hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise UserError(f"option {name} must be a positive integer, got {getattr(self, name)}")
        if self.max_tokens < 3:
            raise UserError(f"option max_tokens must be at least 3 (padding, unknown and one token), "
                            f"got {self.max_tokens}")
        contract.check_rate("dropout", self.dropout)
        contract.check_rate("word_dropout", self.word_dropout)


# ---- data -----------------------------------------------------------------------------------------

def load_data(o: Options):
    """(train texts, train labels, valid texts, valid labels, description)."""
    if o.train is None:
        texts, labels = stdlib_docstrings()
        source = "the built-in standard-library docstrings (label: Library Reference chapter)"
    else:
        texts, labels = read_labelled(o.train, o.text_column, o.label_column)
        source = o.train
    if len(set(labels)) < 2:
        raise UserError(f"{o.train or 'the data'} has one label only ({labels[0]!r}); a classifier needs two or more")
    if o.valid is not None:
        vt, vl = read_labelled(o.valid, o.text_column, o.label_column)
        contract.check_labels(vl, label_order(labels), o.valid)
        return texts, labels, vt, vl, f"{source}, validation {o.valid}"
    tr, va = contract.holdout(len(texts), o.val_fraction, o.seed)
    return ([texts[i] for i in tr], [labels[i] for i in tr], [texts[i] for i in va], [labels[i] for i in va],
            f"{source}, {len(va)} held out for validation")


def examples(vec: TextVectorizer, texts, labels, names: list[str]):
    index = {n: i for i, n in enumerate(names)}
    return [(vec.encode(t), index[y]) for t, y in zip(texts, labels)]


def collate(batch):
    ids, lengths = pad([e[0] for e in batch])
    return ids, lengths, torch.tensor([e[1] for e in batch])


def batches(exs, batch_size: int, shuffle: bool) -> PaddedBatches:
    return PaddedBatches(exs, collate, lambda e: len(e[0]), batch_size, shuffle)


def make_step(model: TextClassifier, word_dropout: float = 0.0):
    def step(batch, state):
        ids, lengths, y = batch
        if model.training and word_dropout:   # a dropped token becomes the unknown one (id 1; 0 is padding)
            ids = ids.masked_fill((torch.rand(ids.shape) < word_dropout) & (ids > 1), 1)
        logits = model(ids, lengths)                                   # (B, C)
        loss = F.cross_entropy(logits.float(), y)
        acc = (logits.argmax(-1) == y).float().mean()
        return StepOutput(loss, None, n=len(y), metrics={"acc": float(acc)})
    return step


# ---- metrics --------------------------------------------------------------------------------------

@torch.no_grad()
def predict_ids(model: TextClassifier, exs, batch_size: int = 256) -> list[int]:
    model.eval()
    data = batches(exs, batch_size, shuffle=False)
    preds = [0] * len(exs)
    order = iter(data.order())
    for ids, lengths, _ in data:
        for p in model(ids, lengths).argmax(-1).tolist():
            preds[next(order)] = p
    return preds


def metrics(true: list[int], pred: list[int], names: list[str]) -> dict:
    """accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix (scikit-learn)."""
    try:
        from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
    except ImportError:
        raise UserError("classification metrics need scikit-learn: pip install 'rnnkit[text]'") from None
    labels = list(range(len(names)))
    p, r, f, s = precision_recall_fscore_support(true, pred, labels=labels, zero_division=0)
    return {"accuracy": float(accuracy_score(true, pred)),
            "macro_f1": float(f1_score(true, pred, labels=labels, average="macro", zero_division=0)),
            "examples": len(true),
            "per_class": {n: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                              "support": int(s[i])} for i, n in enumerate(names)},
            "labels": names,
            "confusion_matrix": confusion_matrix(true, pred, labels=labels).tolist()}


def report(m: dict) -> str:
    names = m["labels"]
    width = max(12, *(len(n) for n in names))
    lines = [f"accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f} on {m['examples']:,} examples",
             f"{'class':<{width}}  precision  recall     f1  support"]
    for n in names:
        c = m["per_class"][n]
        lines.append(f"{n:<{width}}  {c['precision']:9.3f}  {c['recall']:6.3f}  {c['f1']:5.3f}  {c['support']:7d}")
    lines.append("confusion matrix (rows: true, columns: predicted; classes in the order above):")
    cells = max(len(str(v)) for row in m["confusion_matrix"] for v in row)
    lines += ["  " + " ".join(f"{v:>{cells}}" for v in row) for row in m["confusion_matrix"]]
    return "\n".join(lines)


# ---- the task -------------------------------------------------------------------------------------

def run(o: Options) -> int:
    o, resume = contract.start(o, "classify")   # --out checked before any work; --resume: the run's own options
    texts, labels, vtexts, vlabels, source = load_data(o)
    if resume is None:
        names = label_order(labels)
        vec = TextVectorizer(o.max_tokens, "lower" if o.lowercase else None, TOKENS[o.tokens], o.max_length).fit(texts)
        config = ClassifierConfig(len(vec), len(names), o.cell, o.embedding_dim, o.hidden_size, o.num_layers,
                                  o.bidirectional, o.pooling, o.dropout)
        model = TextClassifier(config)
    else:   # the run's own vocabulary, label names and model (its weights: the Trainer restores them)
        model, vec, names, _ = load(resume)
        config = model.config
        contract.check_labels(labels + vlabels, names, o.train or "the built-in data")
    train_ex, val_ex = examples(vec, texts, labels, names), examples(vec, vtexts, vlabels, names)
    print(f"classify: {len(texts):,} training texts from {source}; {len(names)} classes; "
          f"{len(vec):,} {o.tokens} tokens (unknown in validation: {vec.oov_rate(vtexts):.1%}); "
          f"{sum(p.numel() for p in model.parameters()):,} parameters; backend {model.backend}", file=sys.stderr)
    trainer = contract.train(model, make_step(model, o.word_dropout), batches(train_ex, o.batch_size, True),
                             batches(val_ex, 256, False), o,
                             {"task": "classify", "model": config.to_dict(), "vectorizer": vec.to_dict(),
                              "labels": names}, resume)
    best = contract.best_row(trainer)
    path = contract.load_best(trainer, model)
    m = metrics([e[1] for e in val_ex], predict_ids(model, val_ex), names)
    png = contract.save_confusion_png(m["confusion_matrix"], names, Path(o.out) / "confusion_matrix.png")
    print(f"best checkpoint {path} (epoch {best.get('epoch')}, step {best.get('step')}) on validation:")
    print(report(m))
    print(f"{trainer.global_step} updates in {trainer.elapsed / 60:.1f} min"
          + (f"; {trainer.stop_reason}" if trainer.stop_reason else "") + (f"; confusion matrix {png}" if png else ""))
    return 0


def load(ck) -> tuple[TextClassifier, TextVectorizer, list[str], dict]:
    """The model, vectorizer, label names and options saved in a classify checkpoint."""
    try:
        model = TextClassifier(ClassifierConfig(**ck.config["model"]))
        vec = TextVectorizer.from_dict(ck.config["vectorizer"])
        names, options = list(ck.config["labels"]), dict(ck.config.get("options", {}))
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"checkpoint {ck.path} has a malformed classify config ({e})") from None
    restore_model(model, ck)
    return model.eval(), vec, names, options


def evaluate_file(ck, path: str, png: str | None = None) -> dict:
    model, vec, names, o = load(ck)
    texts, labels = read_labelled(path, o.get("text_column"), o.get("label_column"))
    contract.check_labels(labels, names, path)
    exs = examples(vec, texts, labels, names)
    m = metrics([e[1] for e in exs], predict_ids(model, exs), names)
    if png:
        contract.save_confusion_png(m["confusion_matrix"], names, Path(png))
    return m


def predict(ck, source: str, stream) -> None:
    """One label per input text: the text column of a table, else one text per line."""
    model, vec, names, o = load(ck)
    texts = read_unlabelled(source, o.get("text_column"))
    preds = predict_ids(model, [(vec.encode(t), 0) for t in texts])
    for p in preds:
        stream.write(names[p] + "\n")
