"""The rnnkit command line: thin, parses options and calls the library.

    rnnkit train TASK [--config FILE.toml] [--option value ...]
    rnnkit generate --checkpoint PATH [--prime TEXT] [--length N] [--temperature T] [--top-k K] [--seed S]
    rnnkit evaluate --checkpoint PATH --data FILE [--json]   (charlm also: --text FILE [FILE ...] [--dynamic])
    rnnkit evaluate --checkpoint PATH (--src F --tgt F | --data TSV) [--beam K] [--json]   (seq2seq)
    rnnkit predict --checkpoint PATH [FILE|-]
    rnnkit predict --checkpoint PATH [--beam K] [FILE|-] [--attention-png PNG]     (seq2seq)
    rnnkit predict --checkpoint PATH [--beam K] IMAGE [IMAGE ...] [--attention-png PNG]   (caption)
    (a PNG named by evaluate --png or --attention-png, predict --attention-png: replaced only with --overwrite)
    rnnkit export --checkpoint PATH --out MODEL.onnx [--step] [--overwrite]
    rnnkit info
    rnnkit bench [...]
    rnnkit gradflow [--cell CELL ...] [--steps T] [--checkpoint CK ...] [--out DIR]
    rnnkit visualize --checkpoint CK [--text FILE] [--out PAGE.html] [--overwrite]

A user error (unknown task or option, bad value, missing or malformed file,
an output location that cannot be written) prints one line ``rnnkit: error: ...``
and exits with status 2, before any work; an I/O failure during the work (disk
full) prints one line and exits with status 1.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import UserError
from .tasks import TASKS, load_task
from .tasks.options import Parser, check_bounds, parse_options


def task_list() -> str:
    return "tasks:\n" + "\n".join(f"  {name:<10} {summary}" for name, (_, summary) in sorted(TASKS.items()))


def top_parser() -> Parser:
    parser = Parser(prog="rnnkit", description="Recurrent neural networks on PyTorch", epilog=task_list(),
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,generate,evaluate,info,bench,gradflow,predict,export,visualize}")
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
    ev = sub.add_parser("evaluate", help="a checkpoint's metrics on a labelled file (charlm: on a text)")
    ev.add_argument("--checkpoint", required=True, metavar="PATH", help="a checkpoint (.safetensors)")
    ev.add_argument("--data", metavar="FILE", help="labelled data in the task's training format")
    ev.add_argument("--text", nargs="+", metavar="FILE", help="charlm: UTF-8 text file(s)")
    ev.add_argument("--json", action="store_true", help="print one JSON object (metric names to values), nothing else")
    ev.add_argument("--png", metavar="FILE", help="classify: also save the confusion matrix as a PNG; forecast: the forecast plot")
    ev.add_argument("--images", metavar="DIR", help="caption: the folder of the images named in --data")
    add_dynamic_arguments(ev)
    add_seq2seq_arguments(ev, evaluate=True)
    pr = sub.add_parser("predict", help="predictions of a checkpoint for unlabelled input, one per line")
    pr.add_argument("--checkpoint", required=True, metavar="PATH", help="a checkpoint (.safetensors)")
    pr.add_argument("input", nargs="*", metavar="FILE",
                    help="input file, or - for standard input (default); caption: one or more image files")
    add_seq2seq_arguments(pr, evaluate=False)
    exp = sub.add_parser("export", help="write a charlm checkpoint as ONNX, the state an input and an output")
    exp.add_argument("--checkpoint", required=True, metavar="PATH", help="a charlm checkpoint (.safetensors)")
    exp.add_argument("--out", required=True, metavar="MODEL.onnx", help="the ONNX file to write")
    exp.add_argument("--step", action="store_true", help="one time step (streaming) instead of whole sequences")
    exp.add_argument("--overwrite", "--force", dest="force", action="store_true", help="replace --out if it exists")
    sub.add_parser("info", help="versions, threads, cells and the backend each uses")
    bench = sub.add_parser("bench", help="time the cells and backends")
    try:
        from .bench import add_arguments
    except ImportError:
        pass   # reported when run
    else:
        add_arguments(bench)
    from .analysis import command as gradflow   # rnnkit gradflow: analysis/command.py
    gradflow.add_arguments(sub.add_parser("gradflow", help="gradient norms through time and step Jacobians, per cell"))
    from .visualize import command as visualize   # rnnkit visualize: visualize/command.py
    visualize.add_arguments(sub.add_parser("visualize", help="an HTML page of what each unit, gate and attention does"))
    return parser


def add_dynamic_arguments(parser) -> None:
    """charlm: dynamic evaluation (Krause et al. 2018), a separate metric; the checkpoint is never changed."""
    g = parser.add_argument_group("dynamic evaluation (charlm --text)")
    g.add_argument("--dynamic", action="store_true",
                   help="also report the loss with the weights adapting to the text as it is read")
    g.add_argument("--dynamic-method", choices=("rms", "sgd"), default=None, help="update rule (default: rms)")
    g.add_argument("--dynamic-lr", type=float, default=None, help="step size (default: 2e-4)")
    g.add_argument("--dynamic-decay", type=float, default=None,
                   help="pull toward the saved weights per segment, in [0, 1] (default: 0)")
    g.add_argument("--dynamic-segment", type=int, default=None, help="characters per update (default: 50)")


def add_seq2seq_arguments(parser, evaluate: bool) -> None:
    """The seq2seq options of evaluate and predict: data files (evaluate) and decoding."""
    if evaluate:
        parser.add_argument("--src", metavar="FILE", help="seq2seq: source sentences, one a line")
        parser.add_argument("--tgt", metavar="FILE", help="seq2seq: reference translations, line-aligned")
    parser.add_argument("--attention-png", metavar="PNG", help="seq2seq: draw the first sentence's attention map; "
                        "caption: the attended regions for each word over the first image")
    parser.add_argument("--beam", type=int, default=1, help="seq2seq, caption: beam width (1: greedy, the default)")
    parser.add_argument("--encoder", metavar="MODULE:CLASS", help="caption: the custom encoder the checkpoint was "
                        "trained with, imported only when named here")
    parser.add_argument("--workers", type=int, default=1, help="seq2seq: batches decoded at once in threads")
    parser.add_argument("--alpha", type=float, help="seq2seq: length penalty exponent (default: as trained)")
    parser.add_argument("--max-len-a", type=float, help="seq2seq: at most a * source length + b output tokens")
    parser.add_argument("--max-len-b", type=float, help="seq2seq: see --max-len-a")
    parser.add_argument("--overwrite", action="store_true", help="replace a PNG (--png, --attention-png) that exists")


def seq2seq_evaluate(args) -> int:
    from .tasks import seq2seq
    from .train import load_checkpoint
    if bool(args.src) != bool(args.tgt) or bool(args.src) == bool(args.data):
        raise UserError("evaluate a seq2seq checkpoint on --src F --tgt F (parallel files) or --data F (TSV)")
    m = seq2seq.evaluate_file(load_checkpoint(args.checkpoint), args.src or args.data, args.attention_png,
                              tgt=args.tgt, beam=args.beam, workers=args.workers, overwrite=args.overwrite, alpha=args.alpha,
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
    from .train.distributed import agree, session
    with session():   # under torchrun: the process group (train/distributed.py); else nothing
        task, options = agree(lambda: parse_task(argv))   # every rank's options checked before any work
        from .tasks.contract import run_task
        return run_task(task, options)   # under its --threads
    return 0   # a rank other than 0 whose part ended with fit


def parse_task(argv: list[str]):
    task = load_task(argv[0])
    return task, parse_options(task.Options, argv[1:], f"rnnkit train {argv[0]}",
                               task.__doc__.strip().splitlines()[0])


def bench(argv: list[str]) -> int:
    """``rnnkit bench ...``: rnnkit.bench parses its own options."""
    try:
        from .bench import main as bench_main
    except ImportError as e:
        raise UserError(f"rnnkit bench is not available in this installation ({e})") from None
    return bench_main(argv) or 0


DECODE_BOUNDS = {"beam": "[1, 1024]", "workers": "[1, 256]", "alpha": "[0, 100]", "max_len_a": "[0, 1e6]",
                 "max_len_b": "[0, 1e6]"}
GENERATE_BOUNDS = {"length": "[0, 2**24]", "temperature": "[0, 100]", "top_k": "[0, 2**31]", "seed": "[0, 2**63)"}


def generate(args) -> int:
    from .tasks import charlm
    for name, bounds in GENERATE_BOUNDS.items():
        check_bounds(name, getattr(args, name), bounds)
    model, vocab = charlm.load_model(args.checkpoint)
    unknown = vocab.unknown(args.prime)
    if unknown:
        print(f"rnnkit: note: the prime has characters unseen in training, read as unknown: "
              f"{''.join(sorted(unknown))!r}", file=sys.stderr)
    charlm.generate(model, vocab, args.prime, args.length, args.temperature, args.top_k, args.seed)
    return 0


def export(args) -> int:
    """``rnnkit export``: the checkpoint's CharLM as ONNX, its vocabulary and config in the metadata."""
    from .export import export_onnx, require_onnx
    from .tasks import charlm
    from .tasks.options import check_out_file
    require_onnx()
    check_out_file(args.out, (".onnx",), args.force)   # before the checkpoint is read
    model, vocab = charlm.load_model(args.checkpoint)
    path = export_onnx(model, args.out, step=args.step, overwrite=args.force,
                       metadata={"rnnkit.vocab": json.dumps(list(vocab.chars)),
                                 "rnnkit.model": json.dumps(model.config.to_dict())})
    print(f"wrote {path} ({'one step' if args.step else 'whole sequences'}; inputs ids, state_0..; "
          f"outputs logits, state_0_out..)")
    return 0


DRAWN = {("evaluate", "png"): ("classify", "forecast"), ("evaluate", "attention_png"): ("seq2seq",),
         ("predict", "attention_png"): ("seq2seq", "caption")}   # the tasks that draw each PNG option


def check_drawn(task: str | None, command: str, args) -> None:
    """UserError for a PNG option that this task's ``command`` would ignore (caption draws with predict only)."""
    for (where, name), drawers in DRAWN.items():
        if where == command and getattr(args, name, None) is not None and task not in drawers:
            raise UserError(f"--{name.replace('_', '-')}: rnnkit {command} draws no picture for a checkpoint of task "
                            f"{task!r} (it does for {' and '.join(drawers)}); leave it out")


def evaluate(args) -> int:
    from .tasks.charlm import dynamic_options
    from .tasks.contract import check_png
    dynamic = dynamic_options(args)   # validated before any work
    check_png(args.png, "the --png picture", args.overwrite, "--png")   # seq2seq checks --attention-png itself
    task = checkpoint_task(args.checkpoint)
    check_drawn(task, "evaluate", args)
    if dynamic is not None and task != "charlm":
        raise UserError(f"--dynamic evaluates a charlm checkpoint; {args.checkpoint} is of task {task!r}")
    if task == "seq2seq":
        return seq2seq_evaluate(args)
    if task == "caption":
        from .tasks import caption
        return caption.evaluate_command(args)
    if (args.data is None) == (args.text is None):
        raise UserError("evaluate needs --data FILE (or, for a charlm, --text FILE ...), not both")
    if args.data is not None:
        from .tasks.contract import evaluate_command
        return evaluate_command(args.checkpoint, args.data, args.json, args.png)
    from .data.text import read_texts
    from .tasks import charlm
    model, vocab = charlm.load_model(args.checkpoint)
    text = read_texts(args.text)
    r = charlm.evaluate(model, vocab, text)
    if dynamic is not None:
        r.update(charlm.evaluate_dynamic(model, vocab, text, dynamic))
    if args.json:
        print(json.dumps(r))
        return 0
    unknown = len(vocab.unknown(text))
    print(f"{r['characters']:,} characters: loss {r['loss']:.4f} nats/char, {r['bpc']:.4f} bits/char, "
          f"perplexity {r['perplexity']:.3f}" + (f" ({unknown} distinct characters unseen in training)" if unknown else ""))
    if dynamic is not None:
        print(f"dynamic evaluation (weights adapting to this text as it is read, {dynamic.method}, lr {dynamic.lr:g}, "
              f"decay {dynamic.decay:g}, {dynamic.segment} characters per update; a different metric from the "
              f"static one above): loss {r['dynamic_loss']:.4f} nats/char, {r['dynamic_bpc']:.4f} bits/char, "
              f"perplexity {r['dynamic_perplexity']:.3f}; the checkpoint is unchanged")
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
        if args.command in ("evaluate", "predict"):   # the decoding options, checked before any work
            for name, bounds in DECODE_BOUNDS.items():
                if getattr(args, name, None) is not None:
                    check_bounds(name, getattr(args, name), bounds)
        if args.command == "evaluate":
            return evaluate(args)
        elif args.command == "gradflow":
            from .analysis.command import run as gradflow
            return gradflow(args)
        elif args.command == "predict":
            task = checkpoint_task(args.checkpoint)
            check_drawn(task, "predict", args)
            if task == "caption":
                from .tasks import caption
                return caption.predict_command(args)
            if len(args.input) > 1:
                raise UserError(f"predict reads one input file (or - for standard input), got {len(args.input)}")
            source = args.input[0] if args.input else "-"
            if task == "seq2seq":
                from .tasks import seq2seq
                from .train import load_checkpoint
                decode = dict(alpha=args.alpha, max_len_a=args.max_len_a, max_len_b=args.max_len_b)
                seq2seq.predict(load_checkpoint(args.checkpoint), None if source == "-" else source, sys.stdout,
                                beam=args.beam, png=args.attention_png, workers=args.workers,
                                overwrite=args.overwrite, **decode)
                return 0
            from .tasks.contract import predict_command
            return predict_command(args.checkpoint, source)
        elif args.command == "export":
            return export(args)
        elif args.command == "visualize":
            from .visualize.command import run as visualize
            return visualize(args)
        return 0
    except UserError as e:
        if not getattr(e, "silent", False):   # under torchrun one rank reports an error every rank has
            print(f"rnnkit: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:   # a real I/O failure during the work (disk full, a file that vanished): status 1
        where = f": {e.filename}" if e.filename else ""
        print(f"rnnkit: error: {e.strerror or e}{where}", file=sys.stderr)
        return 1
    except MemoryError:
        print("rnnkit: error: out of memory; try smaller sizes", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
