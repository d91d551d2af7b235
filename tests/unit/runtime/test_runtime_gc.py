"""The worker's garbage-collector settings."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from workers.runtime.gctuning import tune_gc
from workers.runtime.settings import RuntimeSettings


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()


@pytest.mark.usefixtures("restored_gc")
def test_threshold_set_and_start_objects_frozen() -> None:
    gc.set_threshold(700, 10, 10)
    built_at_start = [object() for _ in range(10)]

    tune_gc(RuntimeSettings(gc_gen0_threshold=12_345))

    assert gc.get_threshold() == (12_345, 10, 10)
    assert gc.get_freeze_count() >= len(built_at_start)


@pytest.mark.usefixtures("restored_gc")
def test_zero_leaves_python_settings() -> None:
    gc.set_threshold(700, 10, 10)
    frozen_before = gc.get_freeze_count()

    tune_gc(RuntimeSettings(gc_gen0_threshold=0))

    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == frozen_before
