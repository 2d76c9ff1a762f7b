"""Text features, units ranked by how well they follow them, and gate saturation.

Each feature is a number per character of the text, computed after reading
that character (as the state is): an opening quote or bracket is already
inside, a closing one is outside again. A unit that tracks a feature has a
large |Pearson correlation| with it over the text (Karpathy, Johnson &
Fei-Fei 2015 found such "quote" and "line length" cells by eye; the ranking
finds them without scrolling through every unit).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

OPEN, CLOSE = "([{", ")]}"
VOWELS = set("aeiouAEIOU")


def inside_quotes(text: str, quote: str = '"', line_ends: bool = False) -> list[float]:
    """1 between an opening ``quote`` and its closing one (the opening quote included); with ``line_ends``
    a newline ends the quote (single quotes: an apostrophe in prose must not flip the rest of the text)."""
    out, inside = [], False
    for ch in text:
        if ch == quote:
            inside = not inside
        elif ch == "\n" and line_ends:
            inside = False
        out.append(float(inside))
    return out


def bracket_depth(text: str) -> list[float]:
    """How many (, [ or { are open after this character (never below 0)."""
    out, depth = [], 0
    for ch in text:
        depth = depth + 1 if ch in OPEN else max(0, depth - 1) if ch in CLOSE else depth
        out.append(float(depth))
    return out


def position_in_line(text: str) -> list[float]:
    """Characters since the last newline (0 at the newline itself)."""
    out, pos = [], 0
    for ch in text:
        pos = 0 if ch == "\n" else pos + 1
        out.append(float(pos))
    return out


def start_of_word(text: str) -> list[float]:
    """1 at a letter or digit that follows anything else (or starts the text)."""
    return [float(ch.isalnum() and (t == 0 or not text[t - 1].isalnum())) for t, ch in enumerate(text)]


FEATURES = {
    "inside quotes": inside_quotes,
    "inside single quotes": lambda text: inside_quotes(text, "'", line_ends=True),
    "inside brackets": lambda text: [float(d > 0) for d in bracket_depth(text)],
    "bracket depth": bracket_depth,
    "position in line": position_in_line,
    "start of word": start_of_word,
    "vowel": lambda text: [float(ch in VOWELS) for ch in text],
    "uppercase": lambda text: [float(ch.isupper()) for ch in text],
    "whitespace": lambda text: [float(ch.isspace()) for ch in text],
}


def text_features(text: str) -> dict[str, torch.Tensor]:
    """Every feature of FEATURES over ``text``, each (T,) float."""
    return {name: torch.tensor(fn(text), dtype=torch.float64) for name, fn in FEATURES.items()}


@dataclass(frozen=True)
class UnitScore:
    feature: str
    layer: int
    quantity: str
    unit: int
    r: float   # Pearson correlation of the unit's activation with the feature over the text


def correlations(values: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """values (T, U), features (T, K) -> Pearson r (U, K); 0 where either side is constant."""
    v = values.float()
    v = v - v.mean(0)
    f = features.float()
    f = f - f.mean(0)
    denom = v.norm(dim=0)[:, None] * f.norm(dim=0)[None, :]
    r = (v.T @ f) / denom
    return torch.where(denom > 1e-6 * len(v), r, torch.zeros_like(r))


def rank_units(acts, per_feature: int = 10, features: dict[str, torch.Tensor] | None = None) -> list[UnitScore]:
    """For each feature that varies over the text, the ``per_feature`` units (of every layer and quantity)
    with the largest |r|; the whole list sorted by |r|, largest first."""
    features = text_features(acts.text) if features is None else features
    names = [n for n, f in features.items() if f.max() > f.min()]   # a feature absent from the text ranks nothing
    if not names:
        return []
    F = torch.stack([features[n] for n in names], 1)                  # (T, K)
    best: dict[str, list[UnitScore]] = {n: [] for n in names}
    for li, layer in enumerate(acts.layers):
        for quantity, values in layer.quantities.items():
            r = correlations(values, F)                               # (U, K)
            k = min(per_feature, r.shape[0])
            top = r.abs().topk(k, 0).indices                          # (k, K)
            for j, name in enumerate(names):
                best[name] += [UnitScore(name, li, quantity, int(u), float(r[u, j])) for u in top[:, j]]
    ranked = []
    for name in names:
        ranked += sorted(best[name], key=lambda s: -abs(s.r))[:per_feature]
    return sorted(ranked, key=lambda s: -abs(s.r))


def saturation(acts, low: float = 0.1, high: float = 0.9) -> list[dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """Per layer, per gate: (fraction of characters with the gate < ``low``, fraction > ``high``), each (units,).

    The left- and right-saturation of Karpathy, Johnson & Fei-Fei 2015 (their figure 3)."""
    return [{g: ((layer[g] < low).float().mean(0), (layer[g] > high).float().mean(0)) for g in layer.gates}
            for layer in acts.layers]
