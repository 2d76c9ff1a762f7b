"""The rnnkit command line: thin, parses options and calls the library."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rnnkit", description="Recurrent neural networks on PyTorch")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, threads, cells and the backend each uses")
    args = parser.parse_args(argv)
    if args.command == "info":
        from .info import report
        print(report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
