"""Errors of the stream jobs, under the worker error tree."""

from __future__ import annotations

from workers.errors import PermanentError


class StreamConfigError(PermanentError):
    """The job's topics or settings cannot work together; the job refuses to start."""
