"""The attention pages: a classifier's pooling weights over the words, a seq2seq model's attention matrix."""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import UserError
from .page import render


def read_inputs(path: str, lines: int) -> list[str]:
    from ..data.text import read_text
    inputs = [line for line in read_text(path).splitlines() if line.strip()][:lines]
    if not inputs:
        raise UserError(f"{path} has no non-empty line to draw")
    return inputs


@torch.no_grad()
def classifier_items(ck, inputs: list[str]) -> list[dict]:
    """Per input: its tokens, the attention pooling weight of each (summing to 1), and the predicted label."""
    from ..tasks.classify import load
    model, vec, names, _ = load(ck)
    if model.config.pooling != "attention":
        raise UserError(f"{ck.path} pools by {model.config.pooling!r}: only a classifier trained with "
                        "--pooling attention has weights over its words to draw")
    items = []
    for text in inputs:
        ids = vec.encode(text) or [1]                       # an empty text reads one OOV token, as in training
        logits = model(torch.tensor([ids]), torch.tensor([len(ids)]))[0]
        p = logits.softmax(-1)
        label = int(p.argmax())
        items.append({"src": vec.decode(ids) or ["[OOV]"], "weights": [round(float(w), 4) for w in
                                                                       model.last_attention[0, :len(ids)]],
                      "caption": f"predicted {names[label]} ({100 * float(p[label]):.1f}%)"})
    return items


def seq2seq_items(ck, inputs: list[str]) -> list[dict]:
    """Per input sentence: source and output tokens (with </s>) and the (output x source) attention weights."""
    from ..tasks.seq2seq import checkpoint_model, decode_options, translate
    model, tr, options = checkpoint_model(ck)
    if model.config.attention == "none":
        raise UserError(f"{ck.path} has no attention (trained with --attention none): no matrix to draw")
    hyps = translate(model, tr, inputs, 1, **decode_options(options))
    items = []
    for sentence, h in zip(inputs, hyps):
        src = tr.source_tokens(sentence) + ["</s>"]
        tgt = tr.tgt_vocab.decode(h.tokens) + ["</s>"]
        weights = h.attention[:len(tgt), :len(src)]
        items.append({"src": src, "tgt": tgt, "weights": [[round(float(a), 3) for a in row] for row in weights],
                      "caption": f"{sentence} \u2192 {tr.text(h.tokens)}"})
    return items


def attention_page(task: str, ck, checkpoint: str, text: str, lines: int) -> str:
    inputs = read_inputs(text, lines)
    items = classifier_items(ck, inputs) if task == "classify" else seq2seq_items(ck, inputs)
    what = "attention pooling weight of each word" if task == "classify" else "attention of each output token"
    return render("attention", f"rnnkit visualize: {Path(checkpoint).name}",
                  {"items": items, "info": {"task": task, "what": what}},
                  f"<p class=\"info\">{task}: the {what} (white 0, red the largest weight{'' if task == 'classify' else ', 1'}).</p>")
