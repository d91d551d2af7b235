"""Whether the group consumed past a period's end: the decision from the offsets read."""

from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndTimestamp

from topics.offsets import first_offset_at_or_after
from workers.processors.leaderboards.watermark import consumed_past, drained

P0, P1, P2 = (TopicPartition("scores", n) for n in range(3))


def test_no_record_at_or_after_the_instant_reads_as_none_from_either_broker() -> None:
    assert first_offset_at_or_after(None) is None  # Apache Kafka
    assert first_offset_at_or_after(OffsetAndTimestamp(0, -1)) is None  # the embedded broker
    assert first_offset_at_or_after(OffsetAndTimestamp(7, 1_700_000_000_000)) == 7


def test_consumed_past_once_committed_reaches_the_first_record_after_the_end() -> None:
    # P0: records 0-4 before the end, 5 after. P1: nothing after the end, ends at 3. P2: empty.
    first_after = {P0: 5, P1: None, P2: None}
    ends = {P0: 9, P1: 3, P2: 0}
    assert not consumed_past({P0: 4, P1: 3, P2: None}, first_after, ends)
    assert not consumed_past({P0: 5, P1: 2, P2: None}, first_after, ends)
    assert consumed_past({P0: 5, P1: 3, P2: None}, first_after, ends)
    assert consumed_past({P0: 9, P1: 3, P2: None}, first_after, ends)


def test_a_partition_never_committed_on_is_behind_unless_nothing_precedes_the_end() -> None:
    assert not consumed_past({P0: None}, {P0: 2}, {})
    assert consumed_past({P0: None}, {P0: 0}, {})  # every record came after the end


def test_retry_tiers_are_drained_only_when_every_record_was_committed() -> None:
    assert drained({P0: 4, P1: None}, {P0: 4, P1: 0})  # P1 never held a record
    assert drained({P0: 5}, {P0: 4})  # ends read after the commits: never behind them
    assert not drained({P0: 3, P1: None}, {P0: 4, P1: 0})  # one record still waits
    assert not drained({P0: None}, {P0: 1})
