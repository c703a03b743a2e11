"""``tune_gc``: the server process's collector settings after start-up (settings server.gc_threshold)."""

from __future__ import annotations

import gc

from api.bootstrap import tune_gc
from api.settings import Settings


def test_start_up_objects_are_frozen_and_the_young_generation_threshold_is_raised():
    before = gc.get_threshold()
    try:
        tune_gc(Settings().server.gc_threshold)
        assert gc.get_threshold() == (20_000, *before[1:])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_zero_leaves_the_collector_alone():
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    tune_gc(0)
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, frozen)
