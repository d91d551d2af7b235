"""Errors of the rewards processor, under the worker error tree."""

from __future__ import annotations

from workers.errors import PermanentError


class RulesFileError(PermanentError):
    """The rules file is missing, not TOML, or breaks the schema; the message says where."""
