"""EndOffsetReader's logic on a plain fake consumer: which answer wins, when it fetches, and
how it gives up. The real broker's behaviour is in tests/integration/topics."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import TopicPartition

from topics import offsets
from topics.offsets import EndOffsetReader, EndOffsetsUnconfirmedError
from topics.settings import KafkaSettings
from workers.settings import FleetSettings

A = TopicPartition("a", 0)
B = TopicPartition("a", 1)


class FakeConsumer:
    """Answers ListOffsets with `reported`; each poll is a fetch reporting `true_ends`."""

    def __init__(self, reported: dict[TopicPartition, int], true_ends: dict[TopicPartition, int]):
        self.reported = reported
        self.true_ends = true_ends
        self.assigned: list[TopicPartition] = []
        self.paused: set[TopicPartition] = set()
        self.seeks: dict[TopicPartition, int] = {}
        self.highwaters: dict[TopicPartition, int] = {}
        self.polls = 0

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.reported[tp] for tp in partitions}

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = list(partitions)
        self.paused = set()
        self.highwaters = {}  # as aiokafka: a new assignment knows no high watermark

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.highwaters.get(tp)

    async def getmany(self, **_: Any) -> dict[TopicPartition, list[Any]]:
        self.polls += 1
        for tp in self.assigned:
            if tp in self.true_ends and tp not in self.paused:
                self.highwaters[tp] = self.true_ends[tp]
        return {}

    def pause(self, *partitions: TopicPartition) -> None:
        self.paused.update(partitions)

    @property
    def fetching(self) -> set[TopicPartition]:
        return set(self.assigned) - self.paused


def reader_on(
    monkeypatch: pytest.MonkeyPatch, fake: FakeConsumer, **settings: Any
) -> EndOffsetReader:
    monkeypatch.setattr(offsets, "AIOKafkaConsumer", lambda **_: fake)
    return EndOffsetReader(KafkaSettings(**settings))


async def test_the_fetched_high_watermark_wins_over_a_short_list_offsets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a broker whose ListOffsets says 1 and 4 where the partitions end at 10 and 4
    fake = FakeConsumer(reported={A: 1, B: 4}, true_ends={A: 10, B: 4})
    reader = reader_on(monkeypatch, fake)

    # When the ends are read
    ends = await reader.read([A, B, A])

    # Then the fetched ends are answered, each partition once, fetched from the reported end,
    # and the reader stops fetching afterwards
    assert ends == {A: 10, B: 4}
    assert fake.seeks == {A: 1, B: 4}
    assert fake.fetching == set()


async def test_switched_off_it_answers_list_offsets_without_fetching(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeConsumer(reported={A: 1}, true_ends={A: 10})
    reader = reader_on(monkeypatch, fake, verify_end_offsets=False)

    assert await reader.read([A]) == {A: 1}
    assert (fake.polls, fake.seeks) == (0, {})


async def test_no_partitions_asks_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeConsumer(reported={}, true_ends={})
    reader = reader_on(monkeypatch, fake)

    assert await reader.read([]) == {}
    assert fake.polls == 0


async def test_a_partition_no_fetch_answers_for_raises_a_retriable_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a partition whose fetches never answer
    fake = FakeConsumer(reported={A: 3, B: 0}, true_ends={A: 3})
    reader = reader_on(monkeypatch, fake, request_timeout_ms=50)

    # When its end is read, then the reader gives up after the request timeout, naming it
    with pytest.raises(EndOffsetsUnconfirmedError, match=r"a/1") as caught:
        await reader.read([A, B])
    assert caught.value.retriable is True
    assert fake.fetching == set()


def test_verification_is_on_by_default_and_switchable_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert KafkaSettings().verify_end_offsets is True
    monkeypatch.setenv("LIVEOPS_KAFKA__VERIFY_END_OFFSETS", "false")
    assert FleetSettings().kafka.verify_end_offsets is False
