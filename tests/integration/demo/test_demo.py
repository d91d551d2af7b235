"""`make demo` is the README's first command: the suite runs it end to end and reads its verdict."""

from __future__ import annotations

import pytest

from workers.demo.run import run_demo
from workers.settings import FleetSettings


@pytest.mark.integration
async def test_the_demo_plays_its_story_and_every_check_holds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the machine's Redis and MySQL, and a broker the demo starts itself
    # When the demo runs with default settings
    code = await run_demo(FleetSettings())

    # Then it exits 0 and its summary says every check held
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Checks: all passed" in out
    assert "top 10 over HTTP equals Redis: yes" in out
    assert "ranks identical: yes" in out
    assert "stopped the workers, the gateway and the broker" in out
