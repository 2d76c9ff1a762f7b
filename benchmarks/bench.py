"""Run rnnkit's benchmark: python benchmarks/bench.py [--quick] [--cells ...] [--sizes BxTxH,...] [--out bench.json]."""
import sys

from rnnkit.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
