"""A damaged, torn, foreign or missing history.cols costs speed, never data or an exception:
history() reads back what it reads with the column file deleted."""

from __future__ import annotations

import os
import random
import shutil

import pandas as pd
import pytest

import nbtracker
from nbtracker.store.columns import COLS_NAME

MAGIC = b"NBcb"  # each frame of the column file starts with it (see columns.py)


def make_run(project: str = "dmg", rows: int = 150):
    run = nbtracker.init(project=project)
    for s in range(rows):
        nbtracker.log({"alpha": s * 0.25, "n": s}, commit=False)
        nbtracker.log({"beta": -s * 0.5})
        if s % 7 == 0:
            nbtracker.log({"gamma": 1.5, "note": "x"})
    run.finish()
    return run


def reference(run) -> pd.DataFrame:
    """history() read from the log alone."""
    cols = os.path.join(run.storage_dir, COLS_NAME)
    os.rename(cols, cols + ".ref")
    try:
        return nbtracker.Api().run(run.path).history()
    finally:
        os.rename(cols + ".ref", cols)


def frame_starts(data: bytes) -> list[int]:
    starts, i = [], data.find(MAGIC)
    while i >= 0:
        starts.append(i)
        i = data.find(MAGIC, i + 1)
    return starts


def test_a_flipped_bit_in_a_block_header_changes_nothing():
    run = nbtracker.init(project="dmg")
    for s in range(200):
        nbtracker.log({"alpha": s * 0.25, "n": s})
    run.finish()
    want = reference(run)
    path = os.path.join(run.storage_dir, COLS_NAME)
    good = open(path, "rb").read()
    at = good.index(b'"alpha"') + 3  # inside a key name in a header
    for bit in range(8):
        bad = bytearray(good)
        bad[at] ^= 1 << bit
        open(path, "wb").write(bytes(bad))
        pd.testing.assert_frame_equal(nbtracker.Api().run(run.path).history(), want)


@pytest.mark.slow
def test_every_bit_flip_costs_speed_never_data():
    run = make_run()
    want = reference(run)
    path = os.path.join(run.storage_dir, COLS_NAME)
    good = open(path, "rb").read()
    starts = frame_starts(good)
    assert len(starts) >= 2
    # every bit of each frame's prefix, header and first rows, then seeded random bits anywhere
    bits = [8 * i + b for s in starts for i in range(s, min(s + 256, len(good))) for b in range(8)]
    rng = random.Random(1234)
    bits += rng.sample(range(8 * len(good)), 1500)
    r = nbtracker.Api().run(run.path)
    for bit in bits:
        bad = bytearray(good)
        bad[bit // 8] ^= 1 << (bit % 8)
        with open(path, "wb") as f:
            f.write(bad)
        pd.testing.assert_frame_equal(r.history(), want, obj=f"bit {bit}")


def test_torn_cut_doubled_or_garbage_column_files_change_nothing():
    run = make_run()
    want = reference(run)
    path = os.path.join(run.storage_dir, COLS_NAME)
    good = open(path, "rb").read()
    starts = frame_starts(good)
    variants = [good[:n] for n in (1, 7, 19, 20, 100, len(good) // 2, len(good) - 1)]
    variants += [good + good, good[starts[1]:] + good[:starts[1]], b"\0" * 64 + good,
                 good + MAGIC + b"\xff" * 40, MAGIC * 50, good[:starts[1]] * 3,
                 good[:starts[1] + 100] + good[starts[1]:]]  # a torn frame, then a whole one
    r = nbtracker.Api().run(run.path)
    for i, v in enumerate(variants):
        with open(path, "wb") as f:
            f.write(v)
        pd.testing.assert_frame_equal(r.history(), want, obj=f"variant {i}")


def test_a_column_file_from_another_run_changes_nothing():
    run = make_run("dmg1")
    other = make_run("dmg2")  # the same shape: same sequence numbers, other values and times
    want = reference(run)
    shutil.copy(os.path.join(other.storage_dir, COLS_NAME), os.path.join(run.storage_dir, COLS_NAME))
    pd.testing.assert_frame_equal(nbtracker.Api().run(run.path).history(), want)


def test_a_column_file_of_a_log_cut_short_changes_nothing():
    run = make_run()
    log = os.path.join(run.storage_dir, "records.jsonl")
    data = open(log, "rb").read()
    with open(log, "wb") as f:
        f.write(data[:len(data) * 2 // 3])  # the blocks name records no longer there
    want = reference(run)
    pd.testing.assert_frame_equal(nbtracker.Api().run(run.path).history(), want)
    assert len(want) < 150
