"""Tagged sentences from CoNLL-U (read with the ``conllu`` package) and two-column "token tag" files.

* CoNLL-U (https://universaldependencies.org/format.html): ten tab-separated
  fields per word line, comments starting with '#', a blank line after each
  sentence. Multiword-token lines (ids like 3-4) and empty nodes (ids like 5.1)
  are skipped: tags belong to syntactic words. ``column`` picks the tag (upos,
  xpos, deprel, ...).
* Two columns (CoNLL-2003 style): "token tag" per line (more fields: the
  first is the token, the last the tag), blank lines between sentences,
  ``-DOCSTART-`` lines ignored.

A sentence is a pair (tokens, tags). Every malformed line raises UserError
naming the file and line number.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import UserError
from .tabular import read_source
from .vectorizer import missing_extra

CONLLU_FIELDS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")
WORD_ID = re.compile(r"^[1-9][0-9]*$")
SPECIAL_ID = re.compile(r"^([1-9][0-9]*-[1-9][0-9]*|[0-9]+\.[1-9][0-9]*)$")


def tag_format(path: str, text: str) -> str:
    """'conllu' for a .conllu file or one whose first word line has 10 tab-separated fields, else 'columns'."""
    if Path(path).suffix.lower() in (".conllu", ".conll"):
        return "conllu"
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            return "conllu" if len(line.split("\t")) == 10 else "columns"
    return "columns"


def check_conllu_lines(text: str, path: str) -> None:
    """UserError at the first line that is not a comment, a blank line or 10 tab-separated fields."""
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 10:
            raise UserError(f"{path} line {n}: malformed CoNLL-U line: expected 10 tab-separated fields, "
                            f"got {len(fields)}")
        if not (WORD_ID.match(fields[0]) or SPECIAL_ID.match(fields[0])):
            raise UserError(f"{path} line {n}: malformed CoNLL-U line: bad word id {fields[0]!r}")
        if not fields[1]:
            raise UserError(f"{path} line {n}: malformed CoNLL-U line: empty FORM field")


def parse_conllu(text: str, path: str):
    """conllu.TokenList sentences, after our own line check (so errors name the line)."""
    try:
        import conllu
    except ImportError:
        raise missing_extra("conllu", "reading CoNLL-U") from None
    check_conllu_lines(text, path)
    try:
        return conllu.parse(text)
    except Exception as e:   # conllu's ParseException and the errors of its field parsers
        raise UserError(f"{path}: malformed CoNLL-U ({type(e).__name__}: {str(e)[:100]})") from None


def is_word(token) -> bool:
    return isinstance(token["id"], int)


def read_conllu(path: str, column: str = "upos", text: str | None = None) -> list[tuple[list[str], list[str]]]:
    text = read_source(path) if text is None else text
    if column not in CONLLU_FIELDS[2:]:
        raise UserError(f"unknown CoNLL-U column {column!r}; expected one of {', '.join(CONLLU_FIELDS[2:])}")
    sentences = []
    for sent in parse_conllu(text, path):
        words = [t for t in sent if is_word(t)]
        if words:
            sentences.append(([t["form"] for t in words], [str(t[column]) if t[column] is not None else "_"
                                                            for t in words]))
    return sentences


def read_columns(path: str, text: str | None = None, tagged: bool = True) -> list[tuple[list[str], list[str]]]:
    """Sentences of a "token tag" file; ``tagged=False`` reads the first field only (tags come back empty)."""
    text = read_source(path) if text is None else text
    sentences, tokens, tags = [], [], []
    for n, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            if tokens:
                sentences.append((tokens, tags))
            tokens, tags = [], []
            continue
        if fields[0] == "-DOCSTART-":
            continue
        if tagged and len(fields) < 2:
            raise UserError(f"{path} line {n}: a token without a tag ({fields[0]!r}): expected 'token tag' "
                            "(token and tag counts differ)")
        tokens.append(fields[0])
        tags.append(fields[-1] if tagged else "")
    if tokens:
        sentences.append((tokens, tags))
    return sentences


def read_tagged(path: str, column: str = "upos", fmt: str = "auto") -> tuple[list[tuple[list[str], list[str]]], str]:
    """(sentences, format) of a CoNLL-U or two-column file; UserError for a file with no sentences."""
    text = read_source(path)
    fmt = tag_format(path, text) if fmt == "auto" else fmt
    sentences = read_conllu(path, column, text) if fmt == "conllu" else read_columns(path, text)
    if not sentences:
        raise UserError(f"{path} has no sentences; expected {'CoNLL-U' if fmt == 'conllu' else 'token tag lines'}")
    return sentences, fmt


def check_aligned(sentences) -> None:
    """ValueError unless every sentence has as many tags as tokens (for data built in Python)."""
    for i, (tokens, tags) in enumerate(sentences):
        if len(tokens) != len(tags):
            raise UserError(f"sentence {i + 1} has {len(tokens)} tokens but {len(tags)} tags")
        if not tokens:
            raise UserError(f"sentence {i + 1} is empty")


def is_bio(tags) -> bool:
    """True when every tag is O or a B-/I-/E-/S- prefixed label (a span scheme seqeval can score)."""
    tags = set(tags)
    return bool(tags) and "O" in tags and all(t == "O" or t[:2] in ("B-", "I-", "E-", "S-") for t in tags)
