"""The Ding example-sentence extraction of benchmarks/seq2seq.py (the real parallel corpus of the seq2seq
measurement): aligned parts, annotations, alternatives, deduplication, and the split files."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench_seq2seq", ROOT / "benchmarks" / "seq2seq.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

LINES = [
    "# Version :: test\n",
    "Heim {n} | Es ist schön, endlich wieder zu Hause zu sein. :: home | It's good to be home at last.\n",
    "Brust {f} | Gib die Brust heraus.; Brust raus! :: chest | Stick your chest out.; Chest out!\n",
    "Luxus {m} | Sie wohnen mit (einem) Blick auf das Meer. [ugs.] :: luxury | They’re staying with a view of the sea.\n",
    "zu kurz | Geh! :: too short | Go!\n",                          # under 3 words
    "Wort | Er hat/hatte es gesagt. :: word | He has/had said it.\n",   # a/b alternative
    "ungleich | Das ist eins. | Das ist zwei. :: unequal | This is one.\n",   # parts not aligned
    "nochmal | Es ist wieder schön hier. :: again | It's good to be home at last.\n",   # English seen
    "kein Satz {m} | das große Haus :: no sentence | the big house\n",   # no capital, no full stop
]


def test_ding_pairs_rules():
    pairs = bench.ding_pairs(LINES)
    assert pairs == [("It's good to be home at last.", "Es ist schön, endlich wieder zu Hause zu sein."),
                     ("Stick your chest out.", "Gib die Brust heraus."),
                     ("They're staying with a view of the sea.", "Sie wohnen mit Blick auf das Meer.")]


def test_ding_writes_disjoint_seeded_splits(tmp_path):
    lines = [f"w{i} | Das ist der Satz Nummer {i}. :: w{i} | This is sentence number {i}.\n" for i in range(3100)]
    lines += lines[:50]   # repeated entries must not land in two splits
    src = tmp_path / "de-en"
    src.write_text("".join(lines), encoding="utf-8")
    bench.ding(str(tmp_path / "a"), str(src), seed=3)
    bench.ding(str(tmp_path / "b"), str(src), seed=3)
    parts = {p: (tmp_path / "a" / f"{p}.tsv").read_text(encoding="utf-8").splitlines() for p in ("train", "valid", "test")}
    assert [len(parts[p]) for p in ("train", "valid", "test")] == [1100, 1000, 1000]
    english = [line.split("\t")[0] for rows in parts.values() for line in rows]
    assert len(set(english)) == len(english) == 3100
    assert all(line.count("\t") == 1 for rows in parts.values() for line in rows)
    for p in parts:   # the same seed gives the same split
        assert (tmp_path / "b" / f"{p}.tsv").read_bytes() == (tmp_path / "a" / f"{p}.tsv").read_bytes()
    record = json.loads((tmp_path / "a" / "ding.json").read_text(encoding="utf-8"))
    assert (record["pairs"], record["test"], record["valid"], record["train"]) == (3100, 1000, 1000, 1100)


def test_ding_missing_dictionary_names_the_package(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "seq2seq.py"), "ding", str(tmp_path / "o"),
                        "--dict", str(tmp_path / "absent")], capture_output=True, text=True)
    assert r.returncode != 0 and "apt install trans-de-en" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()
