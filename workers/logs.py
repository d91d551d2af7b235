"""Structured logs: JSON lines on stderr.

Nothing is bound to a context: each line about one event passes that event's `event_id`,
`player_id` and `trace_id` (the trace id of its W3C traceparent) as keys of the line
(workers/runtime/pipeline.py, handling.py). Only the process entry point (the `liveops`
command) configures logging; libraries just call structlog.get_logger(). Receipts, device
tokens and secrets are never passed to a logger, and error text about an event is scrubbed
of its sensitive payload values first (schemas/redaction.py).
Libraries that log through the standard library (aiokafka, aiohttp, faust and mode) and Python's
warnings go through the same renderer, so a log pipeline parses every line of a process the
same way: `event`, `level`, `timestamp`, plus `logger` naming the library.
"""

from __future__ import annotations

import logging
import sys

import structlog

#: Libraries log at this level and above, whatever the process's own level (their info lines are
#: noise at our volume); a process that wants more of one library raises that logger itself.
LIBRARY_LEVEL = logging.WARNING


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]  # generic only in typeshed
    """The root handler configure_logging() installs: a class of its own, so configuring again
    replaces it instead of adding a second one (and leaves other handlers, pytest's, alone).
    It writes to sys.stderr as it is at each record, like logging's last-resort handler, not
    to the stream of the moment it was made (one that a test runner may have closed since)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        """StreamHandler.__init__ and setStream() assign it: sys.stderr is always used."""


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    numeric = logging.getLevelNamesMapping()[level.upper()]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamp,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.processors.add_log_level,
                structlog.stdlib.add_logger_name,
                stamp,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(numeric, LIBRARY_LEVEL))
    logging.captureWarnings(True)  # warnings.warn() would write plain text to stderr
