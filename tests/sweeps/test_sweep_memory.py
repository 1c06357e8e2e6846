"""Function mode: what a trial left behind is freed before the next trial starts."""

from __future__ import annotations

import gc
import weakref

import pytest

import nbtracker

pytest.importorskip("optuna")


class Big:
    def __init__(self):
        self.payload = bytearray(50 * 2**20)
        self.me = self  # a reference cycle: only the cycle collector frees it


def test_a_trials_garbage_is_collected_before_the_next_trial():
    refs, alive_at_start = [], []

    def train():
        alive_at_start.append([r() is not None for r in refs])
        nbtracker.init()
        big = Big()
        refs.append(weakref.ref(big))
        nbtracker.log({"loss": 1.0})

    was = gc.isenabled()
    gc.disable()  # as when a training loop's allocations never reach the collector's threshold
    try:
        sid = nbtracker.sweep({"method": "grid", "parameters": {"x": {"values": [1, 2, 3]}}})
        assert nbtracker.agent(sid, function=train) == 3
    finally:
        if was:
            gc.enable()
    assert alive_at_start == [[], [False], [False, False]]


def test_the_agent_leaves_the_collectors_frozen_set_as_it_found_it():
    sid = nbtracker.sweep({"method": "grid", "parameters": {"x": {"values": [1, 2]}}})
    counts = []

    def train():
        counts.append(gc.get_freeze_count())
        nbtracker.init()

    assert gc.get_freeze_count() == 0
    nbtracker.agent(sid, function=train)
    assert counts[0] > 0 and gc.get_freeze_count() == 0  # set aside during, given back after
    gc.freeze()  # a caller who froze objects itself keeps them frozen
    try:
        before = gc.get_freeze_count()
        sid2 = nbtracker.sweep({"method": "grid", "parameters": {"x": {"values": [1]}}})
        nbtracker.agent(sid2, function=lambda: nbtracker.init())
        assert gc.get_freeze_count() > 0.9 * before  # not unfrozen (some died meanwhile)
    finally:
        gc.unfreeze()
