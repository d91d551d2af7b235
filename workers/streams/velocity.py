"""Per-player velocity, the pure part: windows, the tally of one window, the flag decision and
the PlayerFlagged event. No faust and no Kafka here, so all of it is unit-tested directly;
`velocity_job` feeds it records and stores its tallies in the faust table.

Time is the gateway's `received_at` (the record timestamp only when it is missing): it travels
inside the envelope, so a replayed or re-published event (dead-letter replay, mirroring) lands
in the same window as the first time and its flag gets the same event id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from schemas.liveops.v1.abuse_pb2 import FLAG_REASON_VELOCITY, PlayerFlagged
from schemas.liveops.v1.envelope_pb2 import Envelope

#: Mixed into flag event ids, so that another detector's ids can never collide with ours.
FLAG_ID_SOURCE = "velocity"


@dataclass(frozen=True)
class Window:
    """One tumbling window: start inclusive, end exclusive, epoch milliseconds."""

    start_ms: int
    end_ms: int

    @property
    def start_s(self) -> float:
        """The start in seconds, as faust's TumblingWindow keys its ranges."""
        return self.start_ms / 1000


def window_for(at_ms: int, window_s: int) -> Window:
    """The tumbling window (aligned to the epoch, like faust's) that holds `at_ms`."""
    size_ms = window_s * 1000
    start_ms = at_ms - at_ms % size_ms
    return Window(start_ms, start_ms + size_ms)


def event_time_ms(envelope: Envelope, record_timestamp_ms: int) -> int:
    """When the event entered the backbone: the gateway's received_at, else the record's time."""
    if envelope.HasField("received_at"):
        return envelope.received_at.ToMilliseconds()
    return record_timestamp_ms


def source_of(topic: str, partition: int) -> str:
    """The tally's name for one input partition."""
    return f"{topic}/{partition}"


@dataclass(frozen=True)
class WindowTally:
    """What the table remembers about one player in one window.

    `offsets` holds the last offset counted per input partition. faust is at-least-once here
    (no transactions on our brokers): after a crash it redelivers records whose counts already
    reached the changelog, and the offsets tell those apart, so a restart counts nothing twice.
    One player's events stay on one partition per topic, so there are at most a few entries.
    """

    count: int = 0
    event_types: frozenset[str] = frozenset()
    flagged: bool = False
    offsets: Mapping[str, int] = field(default_factory=dict)

    def has_counted(self, source: str, offset: int) -> bool:
        """True when this record (or a later one of its partition) was counted already."""
        last = self.offsets.get(source)
        return last is not None and offset <= last

    def add(self, event_type: str, source: str, offset: int) -> WindowTally:
        """The tally with one more event; the caller checks has_counted() first."""
        return replace(
            self,
            count=self.count + 1,
            event_types=self.event_types | {event_type},
            offsets={**self.offsets, source: offset},
        )

    def mark_flagged(self) -> WindowTally:
        return replace(self, flagged=True)

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "event_types": sorted(self.event_types),
            "flagged": self.flagged,
            "offsets": dict(self.offsets),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> WindowTally:
        """Read a stored tally; None or {} (a window not seen yet) is an empty tally."""
        if not data:
            return cls()
        return cls(
            count=int(data["count"]),
            event_types=frozenset(str(name) for name in data["event_types"]),
            flagged=bool(data["flagged"]),
            offsets={str(source): int(offset) for source, offset in data["offsets"].items()},
        )


def should_flag(tally: WindowTally, max_events_per_window: int) -> bool:
    """Flag the first time the count goes above the threshold, and never again in the window.

    A flag whose publication failed leaves `flagged` unset, so the player's next event in the
    window tries again.
    """
    return not tally.flagged and tally.count > max_events_per_window


def flag_event_id(player_id: str, window: Window) -> str:
    """Deterministic: the same player and window give the same id, on any replay or restart."""
    material = f"{FLAG_ID_SOURCE}\x00{player_id}\x00{window.start_ms}\x00{window.end_ms}"
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def flag_envelope(
    source: Envelope, window: Window, tally: WindowTally, max_events_per_window: int
) -> Envelope:
    """PlayerFlagged for the player of `source`, the event that tipped the window over.

    Ids come from flag_event_id (consumers dedup on them); the timestamps, client and trace are
    the tipping event's, so latency and tracing follow the flag, and a replay of that event
    yields the same bytes.
    """
    event_id = flag_event_id(source.player_id, window)
    envelope = Envelope(event_id=event_id, idempotency_key=event_id, player_id=source.player_id)
    for name in ("occurred_at", "received_at", "client", "trace"):
        if source.HasField(name):
            getattr(envelope, name).CopyFrom(getattr(source, name))
    flagged = PlayerFlagged(
        reason=FLAG_REASON_VELOCITY,
        event_count=tally.count,
        threshold=max_events_per_window,
        event_types=sorted(tally.event_types),
    )
    flagged.window_start.FromMilliseconds(window.start_ms)
    flagged.window_end.FromMilliseconds(window.end_ms)
    envelope.player_flagged.CopyFrom(flagged)
    return envelope
