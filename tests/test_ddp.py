"""Training on 2 processes (torch.distributed, gloo on localhost) equals training on 1 (train/distributed.py).

One spawn of 2 processes runs every case of tests/ddp_runs.py; this process runs the same on 1 process."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import ddp_runs
from rnnkit.train.distributed import Group


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    ddp_runs.run_two(out)
    return out, [json.loads((out / f"checks{r}.json").read_text()) for r in range(2)]


def assert_same_weights(model, path):
    theirs = load_file(path)
    mine = model.state_dict()
    assert sorted(theirs) == sorted(mine)
    for k, v in mine.items():
        torch.testing.assert_close(theirs[k], v, rtol=1e-5, atol=1e-6, msg=k)


def test_two_processes_with_a_global_batch_equal_one_process(two):
    """Global batches of 5 shuffled rows (shards of 2 and 3, and a last batch of 1 row that one rank has
    no part of), two epochs, clipping, Adam: the same weights, history and metrics as one process."""
    out, checks = two
    model, trainer = ddp_runs.regression()
    assert_same_weights(model, out / "regression.safetensors")
    assert trainer.rows_seen == [5, 5, 1] * 2
    assert [c["regression_rows"] for c in checks] == [[2, 2, 1] * 2, [3, 3, 1] * 2]   # 1: a stand-in on rank 0
    expected = {k: v for k, v in trainer.history.rows[-1].items() if k != "time"}
    for c in checks:   # every rank keeps the global figures: training means, validation summed over shards
        assert {k: v for k, v in c["regression_history"].items() if k != "time"} == pytest.approx(expected, rel=1e-5)


def test_stream_batches_are_shared_out_by_stream_with_the_state_carried_per_rank(two):
    """charlm's layout: 5 streams (2 and 3 per rank), TBPTT(4, 6) with the state carried across chunks."""
    out, checks = two
    model, trainer = ddp_runs.streams()
    assert_same_weights(model, out / "streams.safetensors")
    assert trainer.widths == [5] and [c["streams_widths"] for c in checks] == [[2], [3]]   # rank 0: streams 0-1
    assert checks[0]["streams_losses"] == checks[1]["streams_losses"]
    assert checks[0]["streams_losses"] == pytest.approx(trainer.losses, rel=1e-5)


def test_resume_on_two_processes_continues_exactly(two):
    """3 updates, a checkpoint in mid-epoch holding each rank's carried state and generators (dropout on),
    then the rest: the same weights as one uninterrupted 2-process run."""
    for rank, c in enumerate(two[1]):
        assert c["resume_max_diff"] == 0.0, (rank, c["resume_max_diff"])


def test_a_lazily_sized_model_is_built_identically_on_every_rank(two):
    """Each rank's generators are seeded differently; the layers sized at the first call are built before DDP
    wraps the model, which sends rank 0's weights to every rank."""
    for c in two[1]:
        assert c["lazy_keys"] >= 10
        assert c["lazy_built_equal"] and c["lazy_trained_equal"]


def test_shards_cover_every_row_once():
    for rows in range(1, 12):
        for world in (1, 2, 3, 4):
            spans = [Group(r, world).span(rows) for r in range(world)]
            assert spans[0][0] == 0 and spans[-1][1] == rows
            assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
            batch = (torch.arange(rows), torch.zeros(100), [torch.arange(rows) * 2])
            parts = [Group(r, world).shard(batch, rows) for r in range(world)]
            assert torch.equal(torch.cat([p[0][0] for p in parts if p[1]]), torch.arange(rows))
            assert all(torch.equal(p[0][1], torch.zeros(100)) for p in parts)   # not a row: kept whole
            assert all(len(p[0][0]) == 1 for p in parts if not p[1])          # a stand-in row, weight 0
