"""Parallel text for sequence to sequence: readers, tokenizers, vocabularies and padded batches.

Files: two plain-text files, one sentence a line, line i of one the
translation of line i of the other; or one TSV file, source TAB target.
Either may be gzip-compressed (a name ending in .gz). Bad input raises
UserError naming the file and the line.
"""
from __future__ import annotations

import gzip
import math
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError

SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")   # ids 0..3: PAD, UNK, BOS, EOS (models.seq2seq)
TOKENIZATIONS = ("chars", "words", "subword")


def read_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 text file (gzip if the name ends in .gz), without line ends."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"file not found: {path}" if not path.exists() else f"{path} is not a file")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as e:
        raise UserError(f"{path} is not a readable gzip file ({e})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line.rstrip("\r") for line in lines]
    if not any(line.strip() for line in lines):
        raise UserError(f"{path} is empty; expected one sentence a line")
    return lines


def check_pairs(pairs: list[tuple[str, str]], where: str) -> list[tuple[str, str]]:
    for i, (s, t) in enumerate(pairs, 1):
        if not s.strip() or not t.strip():
            raise UserError(f"{where} line {i}: empty {'source' if not s.strip() else 'target'} sentence; "
                            "every line needs a sentence on both sides")
    return pairs


def read_parallel(src: str, tgt: str) -> list[tuple[str, str]]:
    """(source, target) pairs from two line-aligned files."""
    a, b = read_lines(src), read_lines(tgt)
    if len(a) != len(b):
        raise UserError(f"{src} has {len(a)} lines but {tgt} has {len(b)}; parallel files need one sentence "
                        "a line on both sides")
    return check_pairs(list(zip(a, b)), f"{src} / {tgt}")


def read_tsv(path: str) -> list[tuple[str, str]]:
    """(source, target) pairs from a file of ``source<TAB>target`` lines."""
    pairs = []
    for i, line in enumerate(read_lines(path), 1):
        cols = line.split("\t")
        if len(cols) != 2:
            raise UserError(f"{path} line {i}: expected 2 tab-separated columns (source, target), got {len(cols)}")
        pairs.append((cols[0], cols[1]))
    return check_pairs(pairs, str(path))


def tokenize(text: str, kind: str) -> list[str]:
    """"chars": every character; "words": split at whitespace (pre-tokenise punctuation if you want it apart)."""
    return list(text) if kind == "chars" else text.split()


def detokenize(tokens: list[str], kind: str) -> str:
    return "".join(tokens) if kind == "chars" else " ".join(tokens)


class Subwords:
    """A BPE subword vocabulary (Sennrich et al. 2016) learned with Hugging Face ``tokenizers``.

    Text is split at spaces, each word marked with a leading "▁" (SentencePiece's Metaspace), so pieces
    join back into the text exactly. Saved in checkpoints as the library's JSON (no pickle)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    @staticmethod
    def library():
        try:
            import tokenizers
        except ImportError:
            raise UserError("--tokens subword needs Hugging Face tokenizers: pip install 'rnnkit[seq2seq]'") from None
        return tokenizers

    @classmethod
    def learn(cls, texts: list[str], vocab_size: int) -> "Subwords":
        lib = cls.library()
        tok = lib.Tokenizer(lib.models.BPE(unk_token=SPECIALS[1]))
        tok.pre_tokenizer = lib.pre_tokenizers.Metaspace()
        tok.decoder = lib.decoders.Metaspace()
        trainer = lib.trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS), show_progress=False)
        tok.train_from_iterator(texts, trainer)
        return cls(tok)

    @classmethod
    def from_json(cls, text: str) -> "Subwords":
        return cls(cls.library().Tokenizer.from_str(text))

    def to_json(self) -> str:
        return self.tokenizer.to_str()

    def tokenize(self, text: str) -> list[str]:
        return self.tokenizer.encode(text).tokens

    def detokenize(self, pieces: list[str]) -> str:
        return self.tokenizer.decoder.decode(pieces)


@dataclass(frozen=True)
class TokenVocabulary:
    """Tokens and their ids; the first four are PAD, UNK, BOS and EOS."""

    tokens: tuple[str, ...]

    @classmethod
    def build(cls, sentences, min_count: int = 1, max_size: int | None = None) -> "TokenVocabulary":
        """From tokenised sentences: tokens seen at least ``min_count`` times, the most frequent first."""
        counts = Counter(tok for s in sentences for tok in s)
        ranked = sorted((t for t, c in counts.items() if c >= min_count and t not in SPECIALS),
                        key=lambda t: (-counts[t], t))
        if max_size is not None:
            ranked = ranked[:max(0, max_size - len(SPECIALS))]
        return cls(SPECIALS + tuple(ranked))

    def __post_init__(self):
        if self.tokens[:len(SPECIALS)] != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}, got {self.tokens[:4]}")
        object.__setattr__(self, "index", {t: i for i, t in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: list[str]) -> list[int]:
        """Ids with EOS appended; unknown tokens become UNK (1)."""
        return [self.index.get(t, 1) for t in tokens] + [3]

    def decode(self, ids) -> list[str]:
        """Tokens of ids, stopping at EOS; PAD and BOS dropped, UNK shown as <unk>."""
        out = []
        for i in ids:
            i = int(i)
            if i == 3:
                break
            if i > 3 or i == 1:
                out.append(self.tokens[i])
        return out


def pad(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, max length) int64 padded with 0, and (B,) lengths."""
    lengths = torch.tensor([len(r) for r in rows])
    out = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(r)
    return out, lengths


def make_batch(src: list[list[int]], tgt: list[list[int]]):
    """(src (B, S), src lengths (B,), target input (B, T) starting with BOS, target output (B, T) ending in EOS)."""
    s, lengths = pad(src)
    t, _ = pad([[2] + row for row in tgt])
    return s, lengths, t[:, :-1], t[:, 1:]


class PairBatches:
    """Mini-batches of encoded pairs; with ``shuffle`` a fresh order each pass (torch's global generator),
    with sentences of similar source length batched together (less padding)."""

    def __init__(self, src: list[list[int]], tgt: list[list[int]], batch_size: int, shuffle: bool = False):
        if len(src) != len(tgt) or not src:
            raise ValueError(f"expected equally many sources and targets, at least one, got {len(src)}, {len(tgt)}")
        self.src, self.tgt, self.batch_size, self.shuffle = src, tgt, batch_size, shuffle

    def __len__(self) -> int:
        return math.ceil(len(self.src) / self.batch_size)

    def __iter__(self):
        n, size = len(self.src), self.batch_size
        if not self.shuffle:
            order = list(range(n))
        else:
            order = torch.randperm(n).tolist()
            pool = 50 * size   # sort by length inside pools of 50 batches, then shuffle the batches
            order = [i for p in range(0, n, pool) for i in sorted(order[p:p + pool], key=lambda i: len(self.src[i]))]
        batches = [order[i:i + size] for i in range(0, n, size)]
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches)).tolist()]
        for rows in batches:
            yield make_batch([self.src[i] for i in rows], [self.tgt[i] for i in rows])


def split_pairs(pairs: list, fraction: float, seed: int) -> tuple[list, list]:
    """(train, validation): a seeded random ``fraction`` of the pairs is validation."""
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(pairs) * fraction))
    if len(pairs) - n_val < 1:
        raise UserError(f"{len(pairs)} sentence pairs are too few to hold out {fraction:.0%} for validation; "
                        "pass more pairs or a validation set")
    val = set(order[:n_val])
    return [p for i, p in enumerate(pairs) if i not in val], [pairs[i] for i in sorted(val)]


class Translator:
    """Sentences to ids and back for a seq2seq model: tokenization (and subword models), the two
    vocabularies, and whether sources are read backwards. ``to_dict`` is what a checkpoint stores."""

    def __init__(self, src_vocab: TokenVocabulary, tgt_vocab: TokenVocabulary, tokens: str, reverse_source: bool,
                 subwords: tuple | None = None):
        self.src_vocab, self.tgt_vocab, self.tokens, self.reverse_source = src_vocab, tgt_vocab, tokens, reverse_source
        self.subwords = subwords   # (source Subwords, target Subwords) for tokens == "subword"

    @classmethod
    def learn(cls, pairs, tokens: str = "chars", shared: bool = False, reverse_source: bool = False,
              min_count: int = 1, max_vocab: int | None = None, subword_vocab: int = 8000) -> "Translator":
        """Tokenization and vocabularies learned from the training pairs."""
        sides = ([s for s, _ in pairs], [t for _, t in pairs])
        subwords = None
        if tokens == "subword":
            if shared:
                one = Subwords.learn(sides[0] + sides[1], subword_vocab)
                subwords = (one, one)
            else:
                subwords = tuple(Subwords.learn(side, subword_vocab) for side in sides)
        tr = cls(None, None, tokens, reverse_source, subwords)
        toks = [[tr.split(x, i) for x in side] for i, side in enumerate(sides)]
        if shared:
            tr.src_vocab = tr.tgt_vocab = TokenVocabulary.build(toks[0] + toks[1], min_count, max_vocab)
        else:
            tr.src_vocab, tr.tgt_vocab = (TokenVocabulary.build(t, min_count, max_vocab) for t in toks)
        return tr

    def to_dict(self) -> dict:
        return {"src_vocab": list(self.src_vocab.tokens), "tgt_vocab": list(self.tgt_vocab.tokens),
                "tokens": self.tokens, "reverse_source": self.reverse_source,
                "subwords": None if self.subwords is None else [s.to_json() for s in self.subwords]}

    @classmethod
    def from_dict(cls, d: dict) -> "Translator":
        subwords = d.get("subwords")
        return cls(TokenVocabulary(tuple(d["src_vocab"])), TokenVocabulary(tuple(d["tgt_vocab"])), d["tokens"],
                   d["reverse_source"], None if subwords is None else tuple(map(Subwords.from_json, subwords)))

    def split(self, sentence: str, side: int) -> list[str]:
        """Tokens of a source (side 0) or target (side 1) sentence."""
        if self.subwords is not None:
            return self.subwords[side].tokenize(sentence)
        return tokenize(sentence, self.tokens)

    def source_tokens(self, sentence: str) -> list[str]:
        toks = self.split(sentence, 0)
        return toks[::-1] if self.reverse_source else toks

    def source_ids(self, sentence: str) -> list[int]:
        return self.src_vocab.encode(self.source_tokens(sentence))

    def target_ids(self, sentence: str) -> list[int]:
        return self.tgt_vocab.encode(self.split(sentence, 1))

    def encode(self, pairs) -> tuple[list, list]:
        return [self.source_ids(s) for s, _ in pairs], [self.target_ids(t) for _, t in pairs]

    def text(self, ids) -> str:
        tokens = self.tgt_vocab.decode(ids)
        if self.subwords is not None:
            return self.subwords[1].detokenize(tokens)
        return detokenize(tokens, self.tokens)
