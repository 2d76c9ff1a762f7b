"""The rnnkit command line: thin, parses options and calls the library.

    rnnkit train TASK [--config FILE.toml] [--option value ...]
    rnnkit generate --checkpoint PATH [--prime TEXT] [--length N] [--temperature T] [--top-k K] [--seed S]
    rnnkit evaluate --checkpoint PATH --text FILE [FILE ...]                 (charlm)
    rnnkit evaluate --checkpoint PATH (--src F --tgt F | --data TSV) [--beam K] [--json]   (seq2seq)
    rnnkit predict --checkpoint PATH [--beam K] [FILE|-] [--attention-png PNG]     (seq2seq)
    rnnkit info
    rnnkit bench [...]

A user error (unknown task or option, bad value, missing or malformed file)
prints one line ``rnnkit: error: ...`` and exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import UserError
from .tasks import TASKS, load_task
from .tasks.options import Parser, parse_options


def task_list() -> str:
    return "tasks:\n" + "\n".join(f"  {name:<10} {summary}" for name, (_, summary) in sorted(TASKS.items()))


def top_parser() -> Parser:
    parser = Parser(prog="rnnkit", description="Recurrent neural networks on PyTorch", epilog=task_list(),
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True,
                                metavar="{train,generate,evaluate,predict,info,bench}")
    sub.add_parser("train", help="train a task: rnnkit train TASK [--config FILE.toml] [--option value ...]",
                   add_help=False)
    gen = sub.add_parser("generate", help="sample text from a charlm checkpoint, printed as it is produced")
    gen.add_argument("--checkpoint", required=True, metavar="PATH", help="a charlm checkpoint (.safetensors)")
    gen.add_argument("--prime", default="\n", help="text to start from (default: a newline)")
    gen.add_argument("--length", type=int, default=500, help="characters to generate (default: 500)")
    gen.add_argument("--temperature", type=float, default=0.8,
                     help="softmax temperature; lower is more conservative, 0 is greedy (default: 0.8)")
    gen.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest characters (0: all)")
    gen.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same text")
    ev = sub.add_parser("evaluate", help="a checkpoint's metrics: charlm on --text, seq2seq on --src/--tgt or --data")
    ev.add_argument("--checkpoint", required=True, metavar="PATH", help="a charlm or seq2seq checkpoint (.safetensors)")
    ev.add_argument("--text", nargs="+", metavar="FILE", help="charlm: UTF-8 text file(s)")
    add_seq2seq_arguments(ev, evaluate=True)
    pred = sub.add_parser("predict", help="seq2seq: one output line per input line (stdin or FILE)")
    pred.add_argument("--checkpoint", required=True, metavar="PATH", help="a seq2seq checkpoint (.safetensors)")
    pred.add_argument("input", nargs="?", metavar="FILE", help="source sentences, one a line (default or -: stdin)")
    add_seq2seq_arguments(pred, evaluate=False)
    sub.add_parser("info", help="versions, threads, cells and the backend each uses")
    bench = sub.add_parser("bench", help="time the cells and backends")
    try:
        from .bench import add_arguments
    except ImportError:
        pass   # reported when run
    else:
        add_arguments(bench)
    return parser


def add_seq2seq_arguments(parser, evaluate: bool) -> None:
    """The seq2seq options of evaluate and predict: data files (evaluate) and decoding."""
    if evaluate:
        parser.add_argument("--src", metavar="FILE", help="seq2seq: source sentences, one a line")
        parser.add_argument("--tgt", metavar="FILE", help="seq2seq: reference translations, line-aligned")
        parser.add_argument("--data", metavar="FILE", help="seq2seq: source<TAB>reference pairs")
        parser.add_argument("--json", action="store_true", help="print one JSON object of metrics, nothing else")
    parser.add_argument("--attention-png", metavar="PNG", help="seq2seq: draw the first sentence's attention map")
    parser.add_argument("--beam", type=int, default=1, help="seq2seq: beam width (1: greedy, the default)")
    parser.add_argument("--workers", type=int, default=1, help="seq2seq: batches decoded at once in threads")
    parser.add_argument("--alpha", type=float, help="seq2seq: length penalty exponent (default: as trained)")
    parser.add_argument("--max-len-a", type=float, help="seq2seq: at most a * source length + b output tokens")
    parser.add_argument("--max-len-b", type=float, help="seq2seq: see --max-len-a")


def seq2seq_evaluate(args) -> int:
    from .tasks import seq2seq
    from .train import load_checkpoint
    if bool(args.src) != bool(args.tgt) or bool(args.src) == bool(args.data):
        raise UserError("evaluate a seq2seq checkpoint on --src F --tgt F (parallel files) or --data F (TSV)")
    m = seq2seq.evaluate_file(load_checkpoint(args.checkpoint), args.src or args.data, args.attention_png,
                              tgt=args.tgt, beam=args.beam, workers=args.workers, alpha=args.alpha,
                              max_len_a=args.max_len_a, max_len_b=args.max_len_b)
    print(json.dumps(m) if args.json else seq2seq.report(m))
    return 0


def checkpoint_task(path: str) -> str | None:
    from .train import load_checkpoint
    if not Path(path).is_file():
        raise UserError(f"checkpoint not found: {path}")
    return load_checkpoint(path).config.get("task")


def train(argv: list[str]) -> int:
    """``rnnkit train TASK ...``: the task's options from its dataclass, then its run()."""
    if not argv or argv[0] in ("-h", "--help"):
        if not argv:
            raise UserError(f"train needs a task: rnnkit train TASK (one of {', '.join(sorted(TASKS))})")
        print("usage: rnnkit train TASK [--config FILE.toml] [--option value ...]\n\n" + task_list()
              + "\n\nrnnkit train TASK --help lists the task's options.")
        return 0
    name = argv[0]
    task = load_task(name)
    options = parse_options(task.Options, argv[1:], f"rnnkit train {name}", task.__doc__.strip().splitlines()[0])
    return task.run(options) or 0


def bench(argv: list[str]) -> int:
    """``rnnkit bench ...``: rnnkit.bench parses its own options."""
    try:
        from .bench import main as bench_main
    except ImportError as e:
        raise UserError(f"rnnkit bench is not available in this installation ({e})") from None
    return bench_main(argv) or 0


def generate(args) -> int:
    from .tasks import charlm
    if args.length < 0 or args.temperature < 0 or args.top_k < 0:
        raise UserError("--length, --temperature and --top-k must not be negative")
    model, vocab = charlm.load_model(args.checkpoint)
    unknown = vocab.unknown(args.prime)
    if unknown:
        print(f"rnnkit: note: the prime has characters unseen in training, read as unknown: "
              f"{''.join(sorted(unknown))!r}", file=sys.stderr)
    charlm.generate(model, vocab, args.prime, args.length, args.temperature, args.top_k, args.seed)
    return 0


def evaluate(args) -> int:
    from .data.text import read_texts
    from .tasks import charlm
    if checkpoint_task(args.checkpoint) == "seq2seq":
        return seq2seq_evaluate(args)
    if not args.text:
        raise UserError("evaluate a charlm checkpoint on --text FILE [FILE ...]")
    model, vocab = charlm.load_model(args.checkpoint)
    text = read_texts(args.text)
    r = charlm.evaluate(model, vocab, text)
    unknown = len(vocab.unknown(text))
    print(f"{r['characters']:,} characters: loss {r['loss']:.4f} nats/char, {r['bpc']:.4f} bits/char, "
          f"perplexity {r['perplexity']:.3f}" + (f" ({unknown} distinct characters unseen in training)" if unknown else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv[:1] == ["train"]:
            return train(argv[1:])
        if argv[:1] == ["bench"] and not {"-h", "--help"} & set(argv[1:]):
            return bench(argv[1:])
        args = top_parser().parse_args(argv)
        if args.command == "info":
            from .info import report
            print(report())
        elif args.command == "bench":
            return bench([])
        elif args.command == "generate":
            return generate(args)
        elif args.command == "evaluate":
            return evaluate(args)
        elif args.command == "predict":
            if checkpoint_task(args.checkpoint) != "seq2seq":
                raise UserError(f"predict reads seq2seq checkpoints; {args.checkpoint} is not one "
                                "(rnnkit generate samples from a charlm)")
            from .tasks import seq2seq
            from .train import load_checkpoint
            decode = dict(alpha=args.alpha, max_len_a=args.max_len_a, max_len_b=args.max_len_b)
            seq2seq.predict(load_checkpoint(args.checkpoint), args.input, sys.stdout, beam=args.beam,
                            png=args.attention_png, workers=args.workers, **decode)
            return 0
        return 0
    except UserError as e:
        print(f"rnnkit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
