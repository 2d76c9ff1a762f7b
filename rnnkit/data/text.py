"""Text for character-level models: reading files, the built-in corpus, the vocabulary."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError

UNK = "\ufffd"  # stands for every character not seen in training (U+FFFD REPLACEMENT CHARACTER)


def builtin_corpus() -> str:
    """English text on every machine with Python: the CPython documentation topics
    that ship with the standard library (``pydoc_data.topics``, about 465 KB)."""
    from pydoc_data.topics import topics
    return "\n\n".join(topics[key].strip() for key in sorted(topics))


def read_text(path: str | Path) -> str:
    """One UTF-8 text file; UserError if it is missing, empty, binary or not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"text file not found: {path}" if not path.exists() else f"{path} is not a file")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    if not raw.strip():
        raise UserError(f"{path} is empty; expected UTF-8 text")
    if b"\x00" in raw[:65536]:
        raise UserError(f"{path} looks binary (it contains NUL bytes); expected UTF-8 text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{path} is not UTF-8 text (byte 0x{raw[error.start]:02x} at offset {error.start}); "
                        "expected a UTF-8 text file") from None


def read_texts(paths) -> str:
    """Several files joined by a blank line, or the built-in corpus when ``paths`` is empty."""
    return "\n\n".join(read_text(p) for p in paths) if paths else builtin_corpus()


@dataclass(frozen=True)
class Vocabulary:
    """Characters and their ids; id 0 is UNK, the stand-in for characters unseen in training."""

    chars: tuple[str, ...]

    @classmethod
    def build(cls, text: str) -> "Vocabulary":
        return cls((UNK,) + tuple(sorted(set(text) - {UNK})))

    def __post_init__(self):
        object.__setattr__(self, "index", {c: i for i, c in enumerate(self.chars)})

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """(len(text),) int64 ids; unseen characters become UNK (0)."""
        get = self.index.get
        return torch.tensor([get(c, 0) for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def unknown(self, text: str) -> set[str]:
        """The characters of ``text`` this vocabulary does not know."""
        return set(text) - set(self.index)
