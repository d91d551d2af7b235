"""Fixtures of the live velocity tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .velocity_process import VelocityProcess


@pytest.fixture
def processes() -> Iterator[list[VelocityProcess]]:
    """Job processes a test started; any still running at teardown is killed."""
    started: list[VelocityProcess] = []
    yield started
    for process in started:
        process.stop()
