"""``rnnkit visualize``: one self-contained HTML page of what a checkpoint's units do.

    rnnkit visualize --checkpoint runs/charlm/best.safetensors [--text FILE] [--out page.html] [--overwrite]

charlm: the text coloured by any unit, the units ranked against text
features, gate saturation. classify (attention pooling): each text's words
coloured by their attention weight. seq2seq (with attention): the
attention matrix of each sentence. Options and the output path are checked
before any work; the page is written atomically and never replaces a file
without --overwrite.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from ..errors import UserError
from ..tasks.options import check_bounds, check_out_file

DEFAULT_CHARS = 5000


def add_arguments(parser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="CK",
                        help="a checkpoint (.safetensors) of charlm, classify (attention pooling) or seq2seq")
    parser.add_argument("--text", metavar="FILE",
                        help="UTF-8 text to read (charlm: default the held-out end of its training text; "
                             "classify, seq2seq: one input a line, required)")
    parser.add_argument("--chars", type=int, default=DEFAULT_CHARS,
                        help=f"charlm: read at most this many characters (default: {DEFAULT_CHARS})")
    parser.add_argument("--lines", type=int, default=20, help="classify, seq2seq: inputs drawn (default: 20)")
    parser.add_argument("--out", default="visualize.html", metavar="PAGE.html",
                        help="the HTML file to write (default: visualize.html)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def check(args):
    """Every option, the checkpoint's task and the output path, before any work: (task, checkpoint, out)."""
    check_bounds("chars", args.chars, "[1, 1000000]")
    check_bounds("lines", args.lines, "[1, 10000]")
    out = check_out_file(args.out, (".html", ".htm"), args.overwrite)
    from ..train import load_checkpoint
    if not Path(args.checkpoint).is_file():
        raise UserError(f"checkpoint not found: {args.checkpoint}")
    ck = load_checkpoint(args.checkpoint)
    task = ck.config.get("task") if isinstance(ck.config, dict) else None
    if task not in ("charlm", "classify", "seq2seq"):
        raise UserError(f"{args.checkpoint} is a checkpoint of task {task!r}: visualize draws charlm, classify "
                        "(attention pooling) and seq2seq (with attention) checkpoints")
    if args.text is not None and not Path(args.text).is_file():
        raise UserError(f"text file not found: {args.text}")
    if task != "charlm" and args.text is None:
        raise UserError(f"visualize a {task} checkpoint on --text FILE (one input a line)")
    return task, ck, out


def default_text(ck, chars: int) -> tuple[str, str]:
    """The text a charlm page reads without --text: the end of its validation text (not trained on)."""
    from ..data.text import read_text, read_texts
    options = ck.config.get("options") or {}
    valid, files = options.get("valid"), options.get("text") or options.get("train") or []
    named = [valid] if valid else list(files)
    missing = [f for f in named if not Path(f).is_file()]
    if missing:
        raise UserError(f"the checkpoint was trained on {missing[0]}, which is not here; pass --text FILE")
    text = read_text(valid) if valid else read_texts(files)
    source = ", ".join(named) if named else "the Python documentation topics (pydoc_data)"
    if len(text) <= chars:
        return text, source
    tail = text[-chars:]
    cut = tail.find("\n")   # start at a line
    tail = tail[cut + 1:] if 0 <= cut < len(tail) // 4 else tail
    return tail, f"the last {len(tail):,} characters of {source}"


def charlm_model(ck):
    """The CharLM and vocabulary of a loaded charlm checkpoint, built once on the meta device and given the saved
    tensors (no random initialisation to throw away: 0.8 s of the default model's 10-second budget)."""
    from ..tasks.charlm import checkpoint_model
    return checkpoint_model(ck)


def run(args) -> int:
    from ..train.checkpoint import atomic_write
    started = time.perf_counter()
    task, ck, out = check(args)
    if task == "charlm":
        from ..data.text import read_text
        from ..inspect import activations
        from .charpage import character_page
        model, vocab = charlm_model(ck)   # a malformed header is one line, before the text is read
        if args.text is not None:
            text, source = read_text(args.text)[:args.chars], args.text
        else:
            text, source = default_text(ck, args.chars)
        acts = activations(model, text, vocab)
        page = character_page(acts, source, f"rnnkit visualize: {Path(args.checkpoint).name}")
    else:
        from .attention import attention_page
        page = attention_page(task, ck, args.checkpoint, args.text, args.lines)
    replaced = out.exists()
    atomic_write(out, page.encode("utf-8"))
    print(f"wrote {out}{' (replaced)' if replaced else ''}: {len(page) / 1e6:.1f} MB in "
          f"{time.perf_counter() - started:.1f} s; open it in a browser (it needs no network)", file=sys.stderr)
    return 0
