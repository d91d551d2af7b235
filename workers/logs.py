"""Structured logs: JSON lines on stderr, with event, player and trace ids bound by the runtime.

Only the process entry point (the `liveops` command) configures logging; libraries just call
structlog.get_logger(). Receipts, device tokens and secrets are never passed to a logger.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    numeric = logging.getLevelNamesMapping()[level.upper()]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries using stdlib logging (aiokafka, aiohttp) go to stderr at warning and above.
    logging.basicConfig(stream=sys.stderr, level=max(numeric, logging.WARNING))
