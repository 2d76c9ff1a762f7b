"""sequence tagging: one tag per token (part of speech, BIO named entities, chunks)

Input: CoNLL-U (read with the conllu package; --column upos, xpos, deprel...)
or two columns "token tag" with blank lines between sentences (CoNLL-2003
style, BIO tags); the format comes from the suffix (.conllu) or the first
line. Without --train it learns the built-in set: Python standard-library
source, every token tagged, names by their syntactic role from ast (function,
class, parameter, attribute, module, local, global, builtin).

Model: word embeddings plus a character encoder of each word (unknown words
are read from their spelling), a bidirectional recurrent encoder, and a
softmax per token or, with --crf, a linear-chain CRF over the sentence.
Metrics: token accuracy, accuracy on words unseen in training, and for BIO
tags span precision/recall/F1 (seqeval). The defaults were chosen by
measurement (benchmarks/tag.md).
"""
from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass

import torch

from ..data.builtin import python_roles
from ..data.conll import check_aligned, is_bio, read_columns, read_tagged, parse_conllu, is_word, tag_format
from ..data.padded import PaddedBatches
from ..data.tabular import read_source
from ..errors import UserError
from ..models.tagger import CELLS, CHAR_ENCODERS, Tagger, TaggerConfig
from ..train import StepOutput, restore_model
from . import contract
from .options import option

PAD, UNK = "<pad>", "<unk>"


@dataclass
class Options(contract.TaskOptions):
    format: str = option("auto", "input format (auto: .conllu suffix or 10 tab-separated fields)", "data",
                         choices=("auto", "conllu", "columns"))
    column: str = option("upos", "the CoNLL-U column to predict", "data",
                         choices=("upos", "xpos", "deprel", "lemma", "feats", "head", "deps", "misc"))
    lowercase: bool = option(True, "lowercase words for the word embedding (characters keep their case)", "data")
    max_word_chars: int = option(20, "characters of a word the character encoder reads", "data")
    cell: str = option("gru", "recurrent cell", "model", choices=tuple(sorted(CELLS)))
    word_dim: int = option(100, "word embedding size", "model")
    char_encoder: str = option("cnn", "character encoder of each word", "model", choices=CHAR_ENCODERS)
    char_dim: int = option(32, "character embedding size", "model")
    char_size: int = option(64, "the character encoder's output size", "model")
    hidden_size: int = option(128, "units per direction", "model")
    num_layers: int = option(1, "stacked bidirectional layers", "model")
    dropout: float = option(0.33, "dropout on the inputs and outputs of the encoder", "model")
    word_dropout: float = option(0.05, "in training, replace a word by <unk> with this probability, so the "
                                       "model learns to tag unknown words", "model")
    crf: bool = option(False, "a CRF output layer (for BIO schemes: consistent spans)", "model")
    out: str = contract.shared("out", "runs/tag")

    def __post_init__(self):
        super().__post_init__()
        for name in ("max_word_chars", "word_dim", "char_dim", "char_size", "hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise UserError(f"option {name} must be a positive integer, got {getattr(self, name)}")
        contract.check_rate("dropout", self.dropout)
        contract.check_rate("word_dropout", self.word_dropout)


@dataclass
class Vocabs:
    """Words, characters and tags; index 0 is padding, index 1 unknown (words and characters)."""
    words: list[str]
    chars: list[str]
    tags: list[str]
    lowercase: bool
    max_word_chars: int

    @classmethod
    def build(cls, sentences, lowercase: bool, max_word_chars: int) -> "Vocabs":
        norm = str.lower if lowercase else str
        words = Counter(norm(w) for tokens, _ in sentences for w in tokens)
        chars = Counter(c for tokens, _ in sentences for w in tokens for c in w)
        tags = sorted({t for _, tags in sentences for t in tags})
        by_count = lambda c: [k for k, _ in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))]
        return cls([PAD, UNK] + by_count(words), [PAD, UNK] + by_count(chars), tags, lowercase, max_word_chars)

    def __post_init__(self):
        self.word_index = {w: i for i, w in enumerate(self.words)}
        self.char_index = {c: i for i, c in enumerate(self.chars)}
        self.tag_index = {t: i for i, t in enumerate(self.tags)}

    def to_dict(self) -> dict:
        return {"words": self.words, "chars": self.chars, "tags": self.tags, "lowercase": self.lowercase,
                "max_word_chars": self.max_word_chars}

    def example(self, tokens: list[str], tags: list[str] | None = None):
        """(word ids, char ids per word, tag ids) of one sentence."""
        norm = str.lower if self.lowercase else str
        words = [self.word_index.get(norm(w), 1) for w in tokens]
        chars = [[self.char_index.get(c, 1) for c in w[:self.max_word_chars]] or [1] for w in tokens]
        return words, chars, [self.tag_index[t] for t in tags] if tags else [0] * len(tokens)


def collate(batch):
    """(words (B, T), chars (B, T, L), tags (B, T), lengths (B,)), all 0-padded."""
    B, T = len(batch), max(len(e[0]) for e in batch)
    L = max(len(c) for e in batch for c in e[1])
    words, tags = torch.zeros(B, T, dtype=torch.long), torch.zeros(B, T, dtype=torch.long)
    chars = torch.zeros(B, T, L, dtype=torch.long)
    for i, (w, c, t) in enumerate(batch):
        words[i, :len(w)] = torch.tensor(w)
        tags[i, :len(t)] = torch.tensor(t)
        for j, cs in enumerate(c):
            chars[i, j, :len(cs)] = torch.tensor(cs)
    return words, chars, tags, torch.tensor([len(e[0]) for e in batch])


def batches(exs, batch_size: int, shuffle: bool) -> PaddedBatches:
    return PaddedBatches(exs, collate, lambda e: len(e[0]), batch_size, shuffle)


def make_step(model: Tagger, word_dropout: float):
    def step(batch, state):
        words, chars, tags, lengths = batch
        if model.training and word_dropout:
            words = words.masked_fill((torch.rand(words.shape) < word_dropout) & (words > 1), 1)
        emissions = model(words, chars, lengths)                       # (B, T, K)
        loss = model.loss(emissions, tags, lengths)
        pred = emissions.argmax(-1) if model.training else model.decode(emissions, lengths)
        mask = pred.new_ones(pred.shape, dtype=torch.bool).cumsum(1) <= lengths[:, None]
        n = int(mask.sum())
        return StepOutput(loss, None, n=n, metrics={"acc": float((pred == tags)[mask].sum()) / n})
    return step


# ---- data and metrics -----------------------------------------------------------------------------

def load_data(o: Options):
    if o.train is None:
        sentences, fmt, source = python_roles(), "columns", "the built-in Python standard-library source (ast roles)"
    else:
        sentences, fmt = read_tagged(o.train, o.column, o.format)
        source = o.train
    check_aligned(sentences)
    if len({t for _, tags in sentences for t in tags}) < 2:
        raise UserError(f"{o.train or 'the data'} has one tag only ({sentences[0][1][0]!r}); tagging needs two or more")
    if o.valid is not None:
        valid, _ = read_tagged(o.valid, o.column, o.format)
        return sentences, valid, fmt, f"{source}, validation {o.valid}"
    tr, va = contract.holdout(len(sentences), o.val_fraction, o.seed)
    return [sentences[i] for i in tr], [sentences[i] for i in va], fmt, f"{source}, {len(va)} sentences held out"


@torch.no_grad()
def predict_tags(model: Tagger, exs, batch_size: int = 128) -> list[list[int]]:
    model.eval()
    data = batches(exs, batch_size, shuffle=False)
    out, order = [None] * len(exs), iter(data.order())
    for words, chars, _, lengths in data:
        for row, n in zip(model.decode(model(words, chars, lengths), lengths).tolist(), lengths.tolist()):
            out[next(order)] = row[:n]
    return out


def metrics(sentences, predicted: list[list[str]], vocabs: Vocabs) -> dict:
    norm = str.lower if vocabs.lowercase else str
    pairs = [(w, t, p) for (tokens, tags), pred in zip(sentences, predicted) for w, t, p in zip(tokens, tags, pred)]
    unseen = [(t, p) for w, t, p in pairs if norm(w) not in vocabs.word_index]
    m = {"token_accuracy": sum(t == p for _, t, p in pairs) / len(pairs),
         "unseen_accuracy": sum(t == p for t, p in unseen) / len(unseen) if unseen else None,
         "tokens": len(pairs), "unseen_tokens": len(unseen), "sentences": len(sentences)}
    if is_bio(vocabs.tags):
        try:
            from seqeval.metrics import f1_score, precision_score, recall_score
        except ImportError:
            raise UserError("span F1 needs seqeval: pip install 'rnnkit[text]'") from None
        gold = [tags for _, tags in sentences]
        m.update(span_precision=float(precision_score(gold, predicted)),
                 span_recall=float(recall_score(gold, predicted)), span_f1=float(f1_score(gold, predicted)))
    return m


def report(m: dict) -> str:
    unseen = "n/a" if m["unseen_accuracy"] is None else f"{m['unseen_accuracy']:.4f}"
    line = (f"token accuracy {m['token_accuracy']:.4f} on {m['tokens']:,} tokens ({m['sentences']:,} sentences); "
            f"on the {m['unseen_tokens']:,} tokens unseen in training {unseen}")
    if "span_f1" in m:
        line += (f"\nspans: precision {m['span_precision']:.4f}, recall {m['span_recall']:.4f}, "
                 f"F1 {m['span_f1']:.4f}")
    return line


def names(ids_rows, vocabs: Vocabs) -> list[list[str]]:
    return [[vocabs.tags[i] for i in row] for row in ids_rows]


# ---- the task -------------------------------------------------------------------------------------

def run(o: Options) -> int:
    o, resume = contract.start(o, "tag")   # --out checked before any work; --resume: the run's own options
    train_s, valid_s, fmt, source = load_data(o)
    if resume is None:
        vocabs = Vocabs.build(train_s, o.lowercase, o.max_word_chars)
        config = TaggerConfig(len(vocabs.words), len(vocabs.chars), len(vocabs.tags), o.cell, o.word_dim, o.char_dim,
                              o.char_size, o.char_encoder, o.hidden_size, o.num_layers, o.dropout, o.crf)
        model = Tagger(config)
    else:   # the run's own vocabularies and model (its weights: the Trainer restores them)
        model, vocabs, _ = load(resume)
        config = model.config
        contract.check_labels([t for _, tags in train_s for t in tags], vocabs.tags, o.train or "the built-in data",
                              "tags")
    contract.check_labels([t for _, tags in valid_s for t in tags], vocabs.tags, o.valid or "the validation part",
                          "tags")
    train_ex = [vocabs.example(*s) for s in train_s]
    val_ex = [vocabs.example(*s) for s in valid_s]
    print(f"tag: {len(train_s):,} sentences ({sum(len(s[0]) for s in train_s):,} tokens) from {source}; "
          f"{len(vocabs.tags)} tags{' (BIO)' if is_bio(vocabs.tags) else ''}; {len(vocabs.words):,} words; "
          f"{sum(p.numel() for p in model.parameters()):,} parameters; backend {model.backend}", file=sys.stderr)
    trainer = contract.train(model, make_step(model, o.word_dropout), batches(train_ex, o.batch_size, True),
                             batches(val_ex, 128, False), o,
                             {"task": "tag", "model": config.to_dict(), "vocabs": vocabs.to_dict(), "format": fmt},
                             resume)
    best = contract.best_row(trainer)
    path = contract.load_best(trainer, model)
    m = metrics(valid_s, names(predict_tags(model, val_ex), vocabs), vocabs)
    print(f"best checkpoint {path} (epoch {best.get('epoch')}, step {best.get('step')}) on validation:")
    print(report(m))
    print(f"{trainer.global_step} updates in {trainer.elapsed / 60:.1f} min"
          + (f"; {trainer.stop_reason}" if trainer.stop_reason else ""))
    return 0


def load(ck) -> tuple[Tagger, Vocabs, dict]:
    try:
        model = Tagger(TaggerConfig(**ck.config["model"]))
        vocabs = Vocabs(**ck.config["vocabs"])
        options = dict(ck.config.get("options", {}))
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"checkpoint {ck.path} has a malformed tag config ({e})") from None
    restore_model(model, ck)
    return model.eval(), vocabs, options


def evaluate_file(ck, path: str, png: str | None = None) -> dict:
    model, vocabs, o = load(ck)
    sentences, _ = read_tagged(path, o.get("column", "upos"), o.get("format", "auto"))
    check_aligned(sentences)
    contract.check_labels([t for _, tags in sentences for t in tags], vocabs.tags, path, "tags")
    predicted = names(predict_tags(model, [vocabs.example(*s) for s in sentences]), vocabs)
    return metrics(sentences, predicted, vocabs)


def predict(ck, source: str, stream) -> None:
    """CoNLL-U in: the same CoNLL-U with the column filled. Token lines in (the first field is the token,
    any others are ignored, blank lines between sentences): "token<TAB>tag" lines out. To tag a plain
    sentence, put one token per line (e.g. ``tr ' ' '\\n'``)."""
    model, vocabs, o = load(ck)
    text = read_source(source)
    if tag_format(source, text) == "conllu":   # the input's own format, whatever the training file's was
        return predict_conllu(model, vocabs, o.get("column", "upos"), text, source, stream)
    sentences = read_columns(source, text, tagged=False)
    tags = names(predict_tags(model, [vocabs.example(tokens) for tokens, _ in sentences]), vocabs) if sentences else []
    for (tokens, _), row in zip(sentences, tags):
        stream.write("".join(f"{w}\t{t}\n" for w, t in zip(tokens, row)) + "\n")


def predict_conllu(model, vocabs, column, text, source, stream) -> None:
    sentences = parse_conllu(text, source)
    words = [[t for t in s if is_word(t)] for s in sentences]
    exs = [vocabs.example([t["form"] for t in ws]) for ws in words if ws]
    tags = iter(names(predict_tags(model, exs), vocabs) if exs else [])
    for sent, ws in zip(sentences, words):
        if ws:
            for token, tag in zip(ws, next(tags)):
                token[column] = tag
        stream.write(sent.serialize())
