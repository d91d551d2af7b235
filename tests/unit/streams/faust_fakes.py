"""Plain fakes of the faust objects the stream job's services read (unit tests only)."""

from __future__ import annotations

from dataclasses import dataclass, field

from faust.exceptions import ConsumerNotStarted
from faust.types import TP


@dataclass
class FakeConsumer:
    """A faust consumer's assignment(); None stands for a consumer thread not started yet."""

    assigned: set[TP] | None = field(default_factory=set)

    def assignment(self) -> set[TP]:
        if self.assigned is None:
            raise ConsumerNotStarted("Consumer thread not yet started")
        return self.assigned
