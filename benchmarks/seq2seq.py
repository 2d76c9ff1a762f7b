"""Seq2seq measurements: quality of a training run, beam-search decoding speed, and a real parallel corpus.

    python benchmarks/seq2seq.py quality NAME [--test TSV | --test-src F --test-tgt F] [--beam K ...]
                                 [--examples N] -- [rnnkit train seq2seq options]
        trains from the CLI, then writes benchmarks/results/seq2seq-NAME.json: the test result of the run
        (OUT/test.json: exact match on generated problems unseen in training), or for user files the
        evaluation of OUT/best.safetensors on the test pairs with each --beam (as `rnnkit evaluate`), the
        copy-the-source baseline and N example translations; plus hardware and versions
    python benchmarks/seq2seq.py speed NAME [--checkpoint CK --data TSV] [--beam 5] [--threads 2]
        sentences per second of batched beam search: on a trained checkpoint's data, or (no checkpoint)
        on a 2x256 GRU model with a 10,000-word vocabulary whose every hypothesis runs the full length
    python benchmarks/seq2seq.py attention NAME --checkpoint CK --data TSV
        where a trained model's attention goes on the sources of TSV (greedy decoding): the mean weight on
        the source's final </s> and the mean largest weight per output step (not a timing)
    python benchmarks/seq2seq.py cldr DIR [--target de]
        writes DIR/{train,valid,test}.{en,de}: English → German names of countries, languages, scripts,
        currencies and variants from the Unicode CLDR data that ships inside babel's wheel (human
        translations; a names corpus, superseded by ding)
    python benchmarks/seq2seq.py ding DIR [--dict /usr/share/trans/de-en] [--seed 0]
        writes DIR/{train,valid,test}.tsv (English TAB German) and DIR/ding.json: the human-translated
        example sentences of the Ding German-English dictionary (Debian package trans-de-en, GPL-2+),
        extracted by the rules of ding_pairs; test and valid 1,000 pairs each, no English or German
        sentence in two splits

Every result file records the date, the load (uptime) before and after, and the command line. Measurements
run at normal priority under ``flock /tmp/rnnkit-measure.lock``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))   # _machine, also when a test loads this file by path
from _machine import LOCKED_NOTE, commit, cpu_model, stamp  # noqa: E402
RESULTS = ROOT / "benchmarks" / "results"
NOTE = LOCKED_NOTE


def environment() -> dict:
    """Hardware and versions, for the result file."""
    import platform
    import torch
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "pinned_to_cores": affinity, "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "rnnkit_commit": commit()}


def save(name: str, record: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"seq2seq-{name}.json"
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def quality(name: str, train_args: list[str], test_src: str | None, test_tgt: str | None, test_tsv: str | None,
            beams: list[int], examples: int) -> None:
    from rnnkit.cli import main
    from rnnkit.tasks import seq2seq
    from rnnkit.train import load_checkpoint
    if "--out" not in train_args:
        train_args += ["--out", f"runs/bench-seq2seq-{name}"]
    out = Path(train_args[train_args.index("--out") + 1])
    for path in (test_src, test_tgt, test_tsv):   # before the training, not after
        if path and not Path(path).is_file():
            sys.exit(f"seq2seq.py quality: test file not found: {path}")
    before, env, start = stamp(), environment(), time.monotonic()
    status = main(["train", "seq2seq", *train_args])
    wall = time.monotonic() - start
    after_training = stamp()
    if status:
        sys.exit(status)
    if test_src or test_tsv:   # best checkpoint by the validation metric, scored as `rnnkit evaluate` scores it
        ck = load_checkpoint(str(out / "best.safetensors"))
        pairs = seq2seq.parallel.read_tsv(test_tsv) if test_tsv else seq2seq.parallel.read_parallel(test_src, test_tgt)
        result = {"test": test_tsv or f"{test_src} / {test_tgt}", "checkpoint": str(out / "best.safetensors")}
        for beam in beams:
            t0 = time.monotonic()
            result[f"beam{beam}"] = seq2seq.evaluate_file(ck, test_tsv or test_src, tgt=test_tgt if not test_tsv else None,
                                                          beam=beam)
            result[f"beam{beam}"]["decode_seconds"] = round(time.monotonic() - t0, 2)
        result["copy_source_baseline"] = seq2seq.scores([s for s, _ in pairs], [t for _, t in pairs])
        if examples:
            model, tr, options = seq2seq.checkpoint_model(ck)
            hyps = seq2seq.translate(model, tr, [s for s, _ in pairs[:examples]], max(beams),
                                     **seq2seq.decode_options(options))
            result["examples"] = [{"source": s, "reference": t, f"beam{max(beams)}": tr.text(h.tokens)}
                                  for (s, t), h in zip(pairs, hyps)]
    else:
        result = json.loads((out / "test.json").read_text())
    history = json.loads((out / "history.json").read_text())
    save(name, {"what": f"rnnkit train seq2seq {' '.join(train_args)}", "before": before,
                "after_training": after_training, "after": stamp(), "environment": env,
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
    before = stamp()
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
    save(name, {"what": f"beam search, width {beam}, {threads} torch thread(s), {workers} worker thread(s)", "before": before, "after": stamp(),
                "sentences": n, "seconds": round(seconds, 3), "sentences_per_second": round(n / seconds, 1),
                **what, "note": NOTE})


def attention_stats(name: str, checkpoint: str, data: str) -> None:
    from rnnkit.tasks import seq2seq
    from rnnkit.train import load_checkpoint
    model, tr, options = seq2seq.checkpoint_model(load_checkpoint(checkpoint))
    if model.config.attention == "none":
        sys.exit(f"seq2seq.py attention: {checkpoint} has no attention")
    sources = [s for s, _ in seq2seq.parallel.read_tsv(data)]
    hyps = seq2seq.translate(model, tr, sources, 1, **seq2seq.decode_options(options))
    on_eos = top = steps = 0.0
    for sentence, h in zip(sources, hyps):
        weights = h.attention[:, :len(tr.source_ids(sentence))]   # (output steps, source ids ending in </s>)
        on_eos += float(weights[:, -1].sum())
        top += float(weights.max(-1).values.sum())
        steps += weights.shape[0]
    save(name, {"what": "attention of greedy decoding, averaged over output steps", "checkpoint": checkpoint,
                "data": data, "sentences": len(sources), "output_steps": int(steps),
                "mean_weight_on_source_eos": round(on_eos / steps, 4), "mean_max_weight": round(top / steps, 4),
                "uniform_weight_on_eos_would_be": round(sum(1 / len(tr.source_ids(s)) for s in sources) / len(sources), 4),
                "date": stamp()["date"]})


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


DING = "/usr/share/trans/de-en"
# {m} {vt} grammar, [Br.] [ugs.] usage labels, (...) optional or explanatory words, <...> variants, /ABBR/
ANNOTATION = re.compile(r"\s*(\{[^{}]*\}|\[[^\[\]]*\]|\([^()]*\)|<[^<>]*>|/[A-Z][A-Za-z.]*/)")
LEFTOVER = re.compile(r"[{}\[\]()<>/|~\t…]")   # unbalanced annotations, "a/b" alternatives, ellipses


def ding_sentence(part: str) -> str | None:
    """One aligned part of a Ding entry as a clean sentence, or None if it is not one.

    Rules: keep the first ";" alternative; delete annotations ({m}, [Br.], (etw.), <Abk.>, /WTHDTM/);
    typographic apostrophes become '; collapse spaces, no space before punctuation; then keep it only
    if it starts with a capital letter, ends in . ! or ?, has at least 3 words, and has no "/" (an
    "a/b" alternative) or leftover bracket, "~", "|" or "…"."""
    s = part.split(";")[0]
    for _ in range(3):   # nested annotations: (nicht {adj})
        s = ANNOTATION.sub("", s)
    s = re.sub(r"\s+", " ", s.replace("’", "'").replace("‘", "'")).strip()
    s = re.sub(r" ([.,!?;:])", r"\1", s)
    ok = s[:1].isupper() and s[-1:] in ".!?" and len(s.split()) >= 3 and not LEFTOVER.search(s)
    return s if ok else None


def ding_pairs(lines) -> list[tuple[str, str]]:
    """(English, German) example sentences of the Ding dictionary, in file order, deduplicated.

    An entry line is "German parts :: English parts", the parts separated by " | " and aligned one to
    one (entries whose two sides have different numbers of parts are skipped). Every aligned part
    that is a sentence on both sides (ding_sentence) is a pair; a pair whose English or German
    sentence was already taken is dropped (the first one wins), so no sentence is in two splits."""
    pairs, seen_en, seen_de = [], set(), set()
    for line in lines:
        if line.startswith("#") or " :: " not in line:
            continue
        de, _, en = line.rstrip("\n").partition(" :: ")
        de_parts, en_parts = de.split(" | "), en.split(" | ")
        if len(de_parts) != len(en_parts):
            continue
        for d, e in zip(de_parts, en_parts):
            d, e = ding_sentence(d), ding_sentence(e)
            if d and e and e not in seen_en and d not in seen_de:
                seen_en.add(e)
                seen_de.add(d)
                pairs.append((e, d))
    return pairs


def ding(out: str, path: str, seed: int, test: int = 1000, valid: int = 1000) -> None:
    if not Path(path).is_file():
        sys.exit(f"seq2seq.py ding: {path} not found; it comes with the Debian package trans-de-en "
                 "(apt install trans-de-en)")
    raw = Path(path).read_bytes()
    version = next((l for l in raw.decode("utf-8").splitlines()[:5] if l.startswith("# Version")), "?")
    pairs = ding_pairs(raw.decode("utf-8").splitlines())
    if len(pairs) < test + valid + 1000:
        sys.exit(f"seq2seq.py ding: only {len(pairs)} sentence pairs in {path}; expected the Ding dictionary")
    random.Random(seed).shuffle(pairs)
    parts = {"test": pairs[:test], "valid": pairs[test:test + valid], "train": pairs[test + valid:]}
    Path(out).mkdir(parents=True, exist_ok=True)
    for part, rows in parts.items():
        Path(out, f"{part}.tsv").write_text("".join(f"{e}\t{d}\n" for e, d in rows), encoding="utf-8")
    words = lambda side: round(sum(len(p[side].split()) for p in pairs) / len(pairs), 2)
    record = {"source": f"Ding German-English dictionary, {path} (Debian package trans-de-en, {version.strip('# ')}; "
                        "GPL-2+, copyright in /usr/share/doc/trans-de-en/copyright), its example sentences",
              "sha256": hashlib.sha256(raw).hexdigest(), "direction": "English → German (TSV: English TAB German)",
              "rules": " ".join((ding_pairs.__doc__ + " " + ding_sentence.__doc__).split()),
              "seed": seed, "pairs": len(pairs), **{part: len(rows) for part, rows in parts.items()},
              "mean_words": {"en": words(0), "de": words(1)}}
    Path(out, "ding.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(pairs)} Ding sentence pairs en → de: " + ", ".join(f"{k} {len(v)}" for k, v in parts.items())
          + f"; written to {out}/{{train,valid,test}}.tsv and ding.json")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("quality")
    q.add_argument("name")
    q.add_argument("--test-src")
    q.add_argument("--test-tgt")
    q.add_argument("--test", help="test pairs as a TSV file (instead of --test-src/--test-tgt)")
    q.add_argument("--beam", type=int, action="append", help="beam width of the test decoding (repeatable; "
                   "default 1)")
    q.add_argument("--examples", type=int, default=0, help="record this many test translations")
    s = sub.add_parser("speed")
    s.add_argument("name")
    s.add_argument("--checkpoint")
    s.add_argument("--data")
    s.add_argument("--beam", type=int, default=5)
    s.add_argument("--threads", type=int, default=1,
                   help="torch threads (on this shared 2-core machine 2 threads ran 8x slower than 1)")
    s.add_argument("--sentences", type=int, default=512)
    s.add_argument("--workers", type=int, default=1, help="batches decoded at once in Python threads")
    a = sub.add_parser("attention")
    a.add_argument("name")
    a.add_argument("--checkpoint", required=True)
    a.add_argument("--data", required=True)
    c = sub.add_parser("cldr")
    c.add_argument("out")
    c.add_argument("--target", default="de")
    c.add_argument("--seed", type=int, default=0)
    d = sub.add_parser("ding")
    d.add_argument("out")
    d.add_argument("--dict", default=DING, help="the Ding dictionary file (Debian: trans-de-en)")
    d.add_argument("--seed", type=int, default=0)
    argv = sys.argv[1:]
    rest = []
    if "--" in argv:
        argv, rest = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    args = p.parse_args(argv)
    if args.cmd == "quality":
        quality(args.name, rest, args.test_src, args.test_tgt, args.test, args.beam or [1], args.examples)
    elif args.cmd == "speed":
        speed(args.name, args.checkpoint, args.data, args.beam, args.threads, args.sentences, args.workers)
    elif args.cmd == "attention":
        attention_stats(args.name, args.checkpoint, args.data)
    elif args.cmd == "ding":
        ding(args.out, args.dict, args.seed)
    else:
        cldr(args.out, args.target, args.seed)


if __name__ == "__main__":
    main()
