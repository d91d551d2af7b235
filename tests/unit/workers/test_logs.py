"""configure_logging(): every line a process writes to stderr is one JSON object, whoever logs it
(our structlog calls, a library through the standard library, a Python warning)."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator

import pytest
import structlog

from workers.logs import configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    # An earlier test's configure_logging() may have left logging "capturing" warnings while
    # pytest has since put its own showwarning back: start from not capturing.
    logging.captureWarnings(False)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)
    structlog.reset_defaults()


def lines_of(err: str) -> list[dict[str, object]]:
    """stderr as JSON objects; json.loads raises on any line that is not one."""
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_library_records_and_warnings_are_json_lines_like_ours(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", "json")

    structlog.get_logger().info("batch settled", player_id="p1")
    logging.getLogger("aiokafka.conn").error("Connect call failed %s", ("127.0.0.1", 9))
    try:
        _ = 1 / 0
    except ZeroDivisionError:
        logging.getLogger("aiohttp.server").exception("handler failed")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("an old API", DeprecationWarning, stacklevel=1)

    ours, library, failed, warned = lines_of(capsys.readouterr().err)
    assert ours["event"] == "batch settled" and ours["player_id"] == "p1", ours
    assert library["event"] == "Connect call failed ('127.0.0.1', 9)", library
    assert (library["level"], library["logger"]) == ("error", "aiokafka.conn"), library
    assert all("timestamp" in entry for entry in (ours, library, failed, warned))
    assert failed["logger"] == "aiohttp.server", failed
    assert "ZeroDivisionError: division by zero" in str(failed["exception"]), failed
    assert warned["logger"] == "py.warnings" and "an old API" in str(warned["event"]), warned


def test_library_info_lines_are_dropped_but_our_own_are_kept(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", "json")

    logging.getLogger("aiokafka.consumer").info("Updating subscribed topics")
    structlog.get_logger().info("partitions assigned")

    assert [entry["event"] for entry in lines_of(capsys.readouterr().err)] == [
        "partitions assigned"
    ]


def test_configuring_again_replaces_its_handler_instead_of_adding_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", "json")
    configure_logging("debug", "json")

    logging.getLogger("aiokafka").warning("once")

    assert [entry["event"] for entry in lines_of(capsys.readouterr().err)] == ["once"]
