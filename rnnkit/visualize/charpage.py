"""The character model's page: coloured text, unit ranking and gate saturation from ``rnnkit.inspect``.

Activations travel as one byte per value (per unit: 0 is the unit's minimum
over the text, 255 its maximum), unit-major and base64-encoded, so 5,000
characters of a 2 x 512 GRU (8 quantities) take about 27 MB rather than
several hundred of JSON; the page decodes a quantity when it is first shown.
"""
from __future__ import annotations

import base64
import html
import math

import torch

from ..inspect import Activations, rank_units, saturation
from .page import render

GATE_COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e"]


def quantize(values: torch.Tensor) -> dict:
    """(T, U) -> per unit lo, hi and the bytes round(255 (v - lo) / (hi - lo)), unit-major, base64."""
    v = values.float()
    lo, hi = v.min(0).values, v.max(0).values                         # (U,)
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    q = ((v - lo) / span * 255).round().clamp(0, 255).to(torch.uint8)  # (T, U)
    return {"lo": [float(f"{x:.5g}") for x in lo], "hi": [float(f"{x:.5g}") for x in hi],
            "data": base64.b64encode(q.T.contiguous().numpy().tobytes()).decode("ascii")}


def colour_scale(name: str, values: torch.Tensor) -> dict:
    """Centre and half-range of the colour map: σ gates 0.5 ± 0.5, values within [-1, 1] 0 ± 1, others per unit."""
    if name.endswith("gate") and values.min() >= 0 and values.max() <= 1:
        return {"center": 0.5, "scale": 0.5}
    if values.abs().max() <= 1:
        return {"center": 0.0, "scale": 1.0}
    return {"center": 0.0, "scale": None}   # per unit: its largest |value|


def page_data(acts: Activations, source: str, per_feature: int = 10) -> dict:
    ranking = rank_units(acts, per_feature)
    layers = [{"output": la.output,
               "quantities": [{"name": n, "units": int(v.shape[1]), **colour_scale(n, v), **quantize(v)}
                              for n, v in la.quantities.items()]} for la in acts.layers]
    first = ranking[0] if ranking else None
    return {
        "text": acts.text,
        "top": ["".join(row) for row in acts.top_chars],
        "probs": [[round(float(p), 3) for p in row] for row in acts.top_probs],
        "layers": layers,
        "ranking": [{"feature": s.feature, "layer": s.layer, "quantity": s.quantity, "unit": s.unit,
                     "r": round(s.r, 3)} for s in ranking],
        "initial": ({"layer": first.layer, "quantity": first.quantity, "unit": first.unit} if first else
                    {"layer": 0, "quantity": acts.layers[0].output, "unit": 0}),
        "info": {"cell": acts.cell, "layers": len(acts.layers), "characters": len(acts.text), "source": source,
                 "bits_per_char": round(acts.bits_per_char, 4) if math.isfinite(acts.bits_per_char) else None, "max_prob_diff": float(f"{acts.max_prob_diff:.2g}"),
                 "unknown": "".join(sorted(acts.unknown))},
    }


def saturation_svg(acts: Activations) -> str:
    """Per layer, one scatter: each gate unit at (fraction of characters < 0.1, fraction > 0.9)."""
    sat = saturation(acts)
    if not any(sat):
        return (f'<section id="saturation"><h2>Gate saturation</h2><p>A {html.escape(acts.cell)} cell has no '
                "σ gates to saturate.</p></section>")
    size, pad = 240, 34
    plots = []
    for li, gates in enumerate(sat):
        dots, legend = [], []
        for gi, (gate, (left, right)) in enumerate(gates.items()):
            colour = GATE_COLOURS[gi % len(GATE_COLOURS)]
            legend.append(f'<tspan fill="{colour}">● {html.escape(gate)}</tspan> ')
            for u, (lf, rf) in enumerate(zip(left.tolist(), right.tolist())):
                x, y = pad + lf * (size - pad - 8), size - pad - rf * (size - pad - 8)
                dots.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}" fill-opacity="0.55" '
                            f'data-layer="{li}" data-quantity="{html.escape(gate)}" data-unit="{u}">'
                            f'<title>layer {li} {html.escape(gate)} unit {u}: &lt;0.1 {lf:.2f}, &gt;0.9 {rf:.2f}'
                            "</title></circle>")
        end = size - 8
        plots.append(
            f'<figure><svg width="{size + 10}" height="{size + 30}" viewBox="0 0 {size + 10} {size + 30}" '
            f'role="img" aria-label="gate saturation, layer {li}">'
            f'<rect x="{pad}" y="8" width="{end - pad}" height="{size - pad - 8}" fill="none" stroke="#999"/>'
            f'<line x1="{pad}" y1="8" x2="{end}" y2="{size - pad}" stroke="#ddd"/>'
            f'<text x="{pad}" y="{size - pad + 14}" font-size="10">0</text>'
            f'<text x="{end - 6}" y="{size - pad + 14}" font-size="10">1</text>'
            f'<text x="{pad + 20}" y="{size - pad + 26}" font-size="11">fraction left-saturated (&lt; 0.1)</text>'
            f'<text x="12" y="{size - pad - 30}" font-size="11" transform="rotate(-90 12 {size - pad - 30})">'
            "fraction right-saturated (&gt; 0.9)</text>"
            + "".join(dots) +
            f'<text x="{pad}" y="{size + 24}" font-size="11">{"".join(legend)}</text></svg>'
            f"<figcaption>layer {li}</figcaption></figure>")
    return ('<section id="saturation"><h2>Gate saturation</h2><p>Each dot is one gate unit: how often it is '
            "nearly closed (x) and nearly open (y) over this text (Karpathy, Johnson &amp; Fei-Fei 2015, fig. 3). "
            "Click a dot to colour the text by it.</p>" + "".join(plots) + "</section>")


def character_page(acts: Activations, source: str, title: str) -> str:
    return render("charlm", title, page_data(acts, source), saturation_svg(acts))
