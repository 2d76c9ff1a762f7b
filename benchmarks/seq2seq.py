"""Seq2seq measurements: quality of a training run, beam-search decoding speed, and a real parallel corpus.

    python benchmarks/seq2seq.py quality NAME -- [rnnkit train seq2seq options]
        trains from the CLI, then writes benchmarks/results/seq2seq-NAME.json: the test result of the run
        (OUT/test.json: exact match on generated problems unseen in training), or for user files the
        evaluation of OUT/best.safetensors on --test-src/--test-tgt
    python benchmarks/seq2seq.py speed NAME [--checkpoint CK --data TSV] [--beam 5] [--threads 2]
        sentences per second of batched beam search: on a trained checkpoint's data, or (no checkpoint)
        on a 2x256 GRU model with a 10,000-word vocabulary whose every hypothesis runs the full length
    python benchmarks/seq2seq.py cldr DIR [--target de]
        writes DIR/{train,valid,test}.{en,de}: English → German names of countries, languages, scripts,
        currencies and variants from the Unicode CLDR data that ships inside babel's wheel (human
        translations; the closest real parallel text on an offline machine)

Every result file records the date, the load (uptime) before and after, and the command line. The
machine is shared with other engineers' niced processes; measurements run at normal priority under
``flock /tmp/rnnkit-measure.lock``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
NOTE = ("measured on a 2-core machine shared with other engineers' processes at nice 15; this process ran at "
        "normal priority under flock /tmp/rnnkit-measure.lock")


def context() -> dict:
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()}


def save(name: str, record: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"seq2seq-{name}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")


def quality(name: str, train_args: list[str], test_src: str | None, test_tgt: str | None, beam: int) -> None:
    from rnnkit.cli import main
    from rnnkit.tasks import seq2seq
    if "--out" not in train_args:
        train_args += ["--out", f"runs/bench-seq2seq-{name}"]
    out = Path(train_args[train_args.index("--out") + 1])
    before, start = context(), time.monotonic()
    status = main(["train", "seq2seq", *train_args])
    wall = time.monotonic() - start
    if status:
        sys.exit(status)
    if test_src:
        model, tr, options = seq2seq.load_model(str(out / "best.safetensors"))
        pairs = seq2seq.parallel.read_parallel(test_src, test_tgt)
        t0 = time.monotonic()
        result = seq2seq.evaluate_pairs(model, tr, pairs, beam, max_len_a=options["max_len_a"],
                                        max_len_b=options["max_len_b"], alpha=options["alpha"])
        result["decode_seconds"] = round(time.monotonic() - t0, 2)
        result.update(test=f"{test_src} / {test_tgt}", beam=beam)
        result["copy_source_baseline"] = seq2seq.scores([s for s, _ in pairs], [t for _, t in pairs])
    else:
        result = json.loads((out / "test.json").read_text())
    history = json.loads((out / "history.json").read_text())
    save(name, {"what": f"rnnkit train seq2seq {' '.join(train_args)}", "before": before, "after": context(),
                "wall_seconds_including_data_and_test": round(wall, 1), "threads": os.environ.get("OMP_NUM_THREADS"),
                "test": result, "history": history, "note": NOTE})


def speed(name: str, checkpoint: str | None, data: str | None, beam: int, threads: int, n: int,
          workers: int) -> None:
    from concurrent.futures import ThreadPoolExecutor
    import torch
    from rnnkit.models.decoding import beam_search
    from rnnkit.models.seq2seq import EOS, Seq2Seq, Seq2SeqConfig
    from rnnkit.tasks import seq2seq
    torch.set_num_threads(threads)
    before = context()
    if checkpoint:
        model, tr, options = seq2seq.load_model(checkpoint)
        sentences = [s for s, _ in seq2seq.parallel.read_tsv(data)][:n]
        seq2seq.translate(model, tr, sentences[:64], beam)   # warm-up
        t0 = time.perf_counter()
        hyps = seq2seq.translate(model, tr, sentences, beam, workers=workers)
        seconds = time.perf_counter() - t0
        what = {"checkpoint": checkpoint, "data": data, "model": model.config.to_dict(),
                "mean_output_tokens": sum(len(h.tokens) + 1 for h in hyps) / len(hyps)}
    else:   # worst case: random weights, EOS suppressed, so every hypothesis runs all 14 steps
        torch.manual_seed(0)
        config = Seq2SeqConfig(10000, 10000, "gru", 256, 2, 2, 256, True, "additive")
        model = Seq2Seq(config).eval()
        with torch.no_grad():
            model.decoder.out.bias[EOS] = -1e4
        g = torch.Generator().manual_seed(0)
        lengths = torch.randint(8, 19, (n,), generator=g)                       # 8..18 words, mean 13
        src = torch.randint(4, 10000, (n, 18), generator=g)
        src[torch.arange(18)[None] >= lengths[:, None]] = 0
        order = lengths.argsort()
        src, lengths = src[order], lengths[order]
        beam_search(model, src[:64], lengths[:64], beam=beam, max_len_a=0, max_len_b=14)   # warm-up
        t0 = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:   # as seq2seq.translate(workers=...)
            list(pool.map(lambda i: beam_search(model, src[i:i + 64], lengths[i:i + 64], beam=beam, max_len_a=0,
                                                max_len_b=14), range(0, n, 64)))
        seconds = time.perf_counter() - t0
        what = {"model": config.to_dict(), "input": "random ids, 8-18 tokens (mean 13)",
                "output_tokens": "14 per hypothesis (EOS suppressed: every hypothesis runs the full length)",
                "batch": 64}
    save(name, {"what": f"beam search, width {beam}, {threads} torch thread(s), {workers} worker thread(s)", "before": before, "after": context(),
                "sentences": n, "seconds": round(seconds, 3), "sentences_per_second": round(n / seconds, 1),
                **what, "note": NOTE})


def cldr(out: str, target: str, seed: int) -> None:
    from babel import Locale
    en, other = Locale("en"), Locale(target)
    pairs = set()
    for attr in ("territories", "languages", "scripts", "currencies", "variants"):
        a, b = getattr(en, attr), getattr(other, attr)
        pairs |= {(a[k], b[k]) for k in a if k in b and isinstance(a[k], str) and isinstance(b[k], str)}
    pairs = sorted(p for p in pairs if "\t" not in p[0] + p[1])
    random.Random(seed).shuffle(pairs)
    n = len(pairs)
    parts = {"test": pairs[:n // 10], "valid": pairs[n // 10:n // 5], "train": pairs[n // 5:]}
    Path(out).mkdir(parents=True, exist_ok=True)
    for part, rows in parts.items():
        Path(out, f"{part}.en").write_text("".join(s + "\n" for s, _ in rows), encoding="utf-8")
        Path(out, f"{part}.{target}").write_text("".join(t + "\n" for _, t in rows), encoding="utf-8")
    print(f"{n} CLDR name pairs en → {target}: " + ", ".join(f"{k} {len(v)}" for k, v in parts.items()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("quality")
    q.add_argument("name")
    q.add_argument("--test-src")
    q.add_argument("--test-tgt")
    q.add_argument("--beam", type=int, default=1)
    s = sub.add_parser("speed")
    s.add_argument("name")
    s.add_argument("--checkpoint")
    s.add_argument("--data")
    s.add_argument("--beam", type=int, default=5)
    s.add_argument("--threads", type=int, default=1,
                   help="torch threads (on this shared 2-core machine 2 threads ran 8x slower than 1)")
    s.add_argument("--sentences", type=int, default=512)
    s.add_argument("--workers", type=int, default=1, help="batches decoded at once in Python threads")
    c = sub.add_parser("cldr")
    c.add_argument("out")
    c.add_argument("--target", default="de")
    c.add_argument("--seed", type=int, default=0)
    argv = sys.argv[1:]
    rest = []
    if "--" in argv:
        argv, rest = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    args = p.parse_args(argv)
    if args.cmd == "quality":
        quality(args.name, rest, args.test_src, args.test_tgt, args.beam)
    elif args.cmd == "speed":
        speed(args.name, args.checkpoint, args.data, args.beam, args.threads, args.sentences, args.workers)
    else:
        cldr(args.out, args.target, args.seed)


if __name__ == "__main__":
    main()
