"""Does an average of the weights help charlm? A timed charlm run that keeps exponential moving averages.

    python benchmarks/charlm_ema.py --text A.txt --minutes 10 --decays 0.99 0.995 0.998 \
        --out benchmarks/results/charlm-a-lstm-bf16-d02-ema.json [-- charlm options]

Trains exactly as ``rnnkit train charlm --text FILE --minutes M`` (the task's defaults plus the options after
``--``), and after every update moves one copy of the weights per decay d towards them
(avg = d * avg + (1 - d) * weights; Polyak averaging, as Keras's ``use_ema``). At the end it scores the
trained weights and each average on the whole held-out tail (the task's split and evaluation), so the
figures share one run. Under the measurement lock (``flock /tmp/rnnkit-measure.lock python ...``); the
result records the load before and after. Issue 18, fifth round: no average beat the weights by more
than 0.001 (benchmarks/charlm.md).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile

import torch

from _machine import LOAD_NOTE, stamp, versions
from rnnkit.errors import UserError
from rnnkit.tasks import charlm
from rnnkit.tasks.options import check_out_file, parse_options
from rnnkit.train import Trainer
from rnnkit.train.checkpoint import atomic_write


class Averages:
    """Trainer callback: one exponential moving average of the parameters per decay, updated after each step."""

    def __init__(self, decays: list[float]):
        self.decays, self.params, self.copies = decays, [], []

    def on_fit_start(self, trainer) -> None:   # the weights as training starts
        self.params = list(trainer.model.parameters())
        self.copies = [[p.detach().clone() for p in self.params] for _ in self.decays]

    @torch.no_grad()
    def on_step_end(self, trainer, loss) -> None:
        weights = [p.detach() for p in self.params]
        for decay, copy in zip(self.decays, self.copies):
            torch._foreach_lerp_(copy, weights, 1 - decay)

    @torch.no_grad()
    def score(self, trainer: Trainer, val) -> dict[str, float]:
        """The held-out loss of each average; the trained weights are put back afterwards."""
        trained = [p.detach().clone() for p in self.params]
        scores = {}
        for decay, copy in zip(self.decays, self.copies):
            torch._foreach_copy_(self.params, copy)
            scores[str(decay)] = trainer.evaluate(val)["loss"]
        torch._foreach_copy_(self.params, trained)
        return scores


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--text", nargs="+", required=True, metavar="FILE")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--decays", type=float, nargs="+", default=[0.99, 0.995, 0.998])
    p.add_argument("--out", required=True, help="JSON result file (not overwritten)")
    a = p.parse_args(own)
    try:   # everything checked before the run
        check_out_file(a.out, (".json",), False, "--out", "name a new file")
        if not all(0 < d < 1 for d in a.decays):
            raise UserError(f"--decays must lie in (0, 1), got {a.decays}")
        o = parse_options(charlm.Options, ["--text", *a.text, "--minutes", str(a.minutes), "--quiet",
                                           "--sample-length", "0", "--out", tempfile.mkdtemp(prefix="charlm-ema-"),
                                           *extra], "charlm_ema.py --", "charlm options")
    except UserError as e:
        raise SystemExit(str(e)) from None
    before = stamp()
    averages = Averages(a.decays)
    o, trainer, model, _, val = charlm.fit(o, callbacks=[averages])
    result = {"text": a.text, "minutes": a.minutes, "options": extra, "precision": trainer.config.precision,
              "model": model.config.to_dict(),
              "updates": trainer.global_step, "before": before, "after": stamp(), **versions(), "note": LOAD_NOTE,
              "curve": [[r["epoch"], r["step"], r["time"], r.get("val_loss")] for r in trainer.history.rows],
              "val_loss": trainer.evaluate(val)["loss"], "average_val_loss": averages.score(trainer, val)}
    atomic_write(a.out, (json.dumps(result, indent=1) + "\n").encode())
    shutil.rmtree(o.out)   # the run's checkpoints: the figures are in the result
    print(json.dumps({k: result[k] for k in ("updates", "val_loss", "average_val_loss")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
