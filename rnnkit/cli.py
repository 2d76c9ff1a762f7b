"""The rnnkit command line: thin, parses options and calls the library.

    rnnkit train TASK [--config FILE.toml] [--option value ...]
    rnnkit generate --checkpoint PATH [--prime TEXT] [--length N] [--temperature T] [--top-k K] [--seed S]
    rnnkit evaluate --checkpoint PATH --text FILE [FILE ...]
    rnnkit export --checkpoint PATH --out MODEL.onnx [--step] [--force]
    rnnkit info
    rnnkit bench [...]

A user error (unknown task or option, bad value, missing or malformed file)
prints one line ``rnnkit: error: ...`` and exits with status 2.
"""
from __future__ import annotations

import argparse
import sys

from .errors import UserError
from .tasks import TASKS, load_task
from .tasks.options import Parser, parse_options


def task_list() -> str:
    return "tasks:\n" + "\n".join(f"  {name:<10} {summary}" for name, (_, summary) in sorted(TASKS.items()))


def top_parser() -> Parser:
    parser = Parser(prog="rnnkit", description="Recurrent neural networks on PyTorch", epilog=task_list(),
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,generate,evaluate,export,info,bench}")
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
    ev = sub.add_parser("evaluate", help="loss, bits per character and perplexity of a charlm on a text")
    ev.add_argument("--checkpoint", required=True, metavar="PATH", help="a charlm checkpoint (.safetensors)")
    ev.add_argument("--text", required=True, nargs="+", metavar="FILE", help="UTF-8 text file(s)")
    exp = sub.add_parser("export", help="write a charlm checkpoint as ONNX, the state an input and an output")
    exp.add_argument("--checkpoint", required=True, metavar="PATH", help="a charlm checkpoint (.safetensors)")
    exp.add_argument("--out", required=True, metavar="MODEL.onnx", help="the ONNX file to write")
    exp.add_argument("--step", action="store_true", help="one time step (streaming) instead of whole sequences")
    exp.add_argument("--force", action="store_true", help="replace --out if it exists")
    sub.add_parser("info", help="versions, threads, cells and the backend each uses")
    bench = sub.add_parser("bench", help="time the cells and backends")
    try:
        from .bench import add_arguments
    except ImportError:
        pass   # reported when run
    else:
        add_arguments(bench)
    return parser


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


def export(args) -> int:
    """``rnnkit export``: the checkpoint's CharLM as ONNX, its vocabulary and config in the metadata."""
    import json

    from .export import export_onnx, require_onnx
    from .tasks import charlm
    require_onnx()
    model, vocab = charlm.load_model(args.checkpoint)
    path = export_onnx(model, args.out, step=args.step, overwrite=args.force,
                       metadata={"rnnkit.vocab": json.dumps(list(vocab.chars)),
                                 "rnnkit.model": json.dumps(model.config.to_dict())})
    print(f"wrote {path} ({'one step' if args.step else 'whole sequences'}; inputs ids, state_0..; "
          f"outputs logits, state_0_out..)")
    return 0


def evaluate(args) -> int:
    from .data.text import read_texts
    from .tasks import charlm
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
        elif args.command == "export":
            return export(args)
        return 0
    except UserError as e:
        print(f"rnnkit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
