"""Labelled texts from CSV, TSV (a header row) and JSON Lines files, and unlabelled texts for prediction.

The format comes from the suffix (.csv, .tsv/.tab, .jsonl/.ndjson), else from
the first line (a '{' means JSON Lines, a tab TSV, else CSV). Columns are found
by name: the first of TEXT_NAMES / LABEL_NAMES present (case-insensitive),
unless named explicitly. Labels are kept as strings ("1" for the integer 1).
"""
from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

from ..errors import UserError

TEXT_NAMES = ("text", "sentence", "review", "content", "document", "comment", "message", "utterance", "tweet")
LABEL_NAMES = ("label", "labels", "class", "category", "sentiment", "target", "y")


def read_source(path: str) -> str:
    """The UTF-8 text of ``path`` ('-': standard input); UserError if missing, binary or not UTF-8."""
    if path == "-":
        return sys.stdin.read()
    p = Path(path)
    if not p.is_file():
        raise UserError(f"data file not found: {path}" if not p.exists() else f"{path} is not a file")
    raw = p.read_bytes()
    if b"\x00" in raw[:65536]:
        raise UserError(f"{path} looks binary (it contains NUL bytes); expected UTF-8 text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})") from None


def table_format(path: str, text: str) -> str:
    """'csv', 'tsv' or 'jsonl'."""
    suffix = Path(path).suffix.lower()
    if suffix in (".csv", ".tsv", ".tab", ".jsonl", ".ndjson"):
        return {".tab": "tsv", ".ndjson": "jsonl"}.get(suffix, suffix[1:])
    first = next((line for line in text.splitlines() if line.strip()), "")
    return "jsonl" if first.lstrip().startswith("{") else "tsv" if "\t" in first else "csv"


def read_rows(path: str, text: str | None = None) -> tuple[list[str], list[tuple[int, dict]]]:
    """(column names, [(line number, row dict)]) of a CSV/TSV/JSON Lines file."""
    text = read_source(path) if text is None else text
    fmt = table_format(path, text)
    if fmt == "jsonl":
        rows, columns = [], []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{path} line {n}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise UserError(f"{path} line {n}: expected a JSON object per line, got {type(row).__name__}")
            columns += [k for k in row if k not in columns]
            rows.append((n, row))
        return columns, rows
    reader = csv.reader(io.StringIO(text), delimiter="\t" if fmt == "tsv" else ",")
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise UserError(f"{path} is empty; expected a header row, then one row per example")
        rows = []
        for record in reader:
            if not any(field.strip() for field in record):
                continue
            if len(record) != len(header):
                raise UserError(f"{path} line {reader.line_num}: {len(record)} fields, but the header has "
                                f"{len(header)} ({', '.join(header)})")
            rows.append((reader.line_num, dict(zip(header, record))))
    except csv.Error as e:
        raise UserError(f"{path} line {reader.line_num}: malformed {fmt.upper()} ({e})") from None
    return header, rows


def find_column(columns: list[str], given: str | None, names: tuple[str, ...], what: str, path: str,
                option: str) -> str:
    if given is not None:
        if given not in columns:
            raise UserError(f"{path} has no column {given!r} (columns: {', '.join(columns)})")
        return given
    lower = {c.lower().strip(): c for c in columns}
    for name in names:
        if name in lower:
            return lower[name]
    raise UserError(f"{path} has no {what} column: none of {', '.join(columns)} is named "
                    f"{'/'.join(names[:4])}...; name it with {option}")


def as_label(value, path: str, line: int) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        raise UserError(f"{path} line {line}: a label must be a string or an integer, got {json.dumps(value)}")
    if isinstance(value, float):
        if not value.is_integer():
            raise UserError(f"{path} line {line}: a label must be a string or an integer, got {value}")
        value = int(value)
    label = str(value).strip()
    if not label:
        raise UserError(f"{path} line {line}: the label is empty")
    return label


def read_labelled(path: str, text_column: str | None = None, label_column: str | None = None
                  ) -> tuple[list[str], list[str]]:
    """(texts, labels) of a CSV/TSV/JSON Lines file; UserError for no rows or a missing column or value."""
    columns, rows = read_rows(path)
    if not rows:
        raise UserError(f"{path} has no rows; expected a header row, then one row per example")
    text_col = find_column(columns, text_column, TEXT_NAMES, "text", path, "--text-column")
    label_col = find_column(columns, label_column, LABEL_NAMES, "label", path, "--label-column")
    texts, labels = [], []
    for line, row in rows:
        if text_col not in row or label_col not in row:
            missing = text_col if text_col not in row else label_col
            raise UserError(f"{path} line {line}: no {missing!r} field")
        if not isinstance(row[text_col], str):
            raise UserError(f"{path} line {line}: the text must be a string, got {json.dumps(row[text_col])}")
        texts.append(row[text_col])
        labels.append(as_label(row[label_col], path, line))
    return texts, labels


def read_unlabelled(path: str, text_column: str | None = None) -> list[str]:
    """Texts to classify: the text column of a .csv/.tsv/.jsonl file, else one text per line."""
    text = read_source(path)
    if Path(path).suffix.lower() in (".csv", ".tsv", ".tab", ".jsonl", ".ndjson"):
        columns, rows = read_rows(path, text)
        col = find_column(columns, text_column, TEXT_NAMES, "text", path, "--text-column")
        return [str(row.get(col, "")) for _, row in rows]
    return text.splitlines()


def label_order(labels) -> list[str]:
    """The distinct labels, numerically if all are integers, else alphabetically."""
    distinct = set(labels)
    try:
        return sorted(distinct, key=int)
    except ValueError:
        return sorted(distinct)
