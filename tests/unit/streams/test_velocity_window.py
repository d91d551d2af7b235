"""The pure part of the velocity job: windows, tallies, the flag decision and the flag event."""

from __future__ import annotations

import faust
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.codec import encode
from schemas.liveops.v1.abuse_pb2 import FLAG_REASON_VELOCITY
from schemas.liveops.v1.envelope_pb2 import Envelope
from workers.streams.velocity import (
    Window,
    WindowTally,
    event_time_ms,
    flag_envelope,
    flag_event_id,
    should_flag,
    source_of,
    window_for,
)

# 2026-11-25T10:00:00Z, a minute boundary.
T0_MS = 1_795_600_800_000
ACTIONS_0 = source_of("player.actions.v1", 0)
SCORES_0 = source_of("leaderboard.scores.v1", 0)


def test_window_holds_its_start_and_not_its_end() -> None:
    assert window_for(T0_MS, 60) == Window(T0_MS, T0_MS + 60_000)
    assert window_for(T0_MS + 59_999, 60) == Window(T0_MS, T0_MS + 60_000)
    assert window_for(T0_MS + 60_000, 60) == Window(T0_MS + 60_000, T0_MS + 120_000)
    assert window_for(T0_MS - 1, 60) == Window(T0_MS - 60_000, T0_MS)


@given(
    at_ms=st.integers(min_value=1_600_000_000_000, max_value=2_000_000_000_000),
    window_s=st.sampled_from([1, 10, 60, 300, 3600]),
)
def test_window_start_is_the_one_faust_keys_the_table_by(at_ms: int, window_s: int) -> None:
    window = window_for(at_ms, window_s)
    assert window.start_ms <= at_ms < window.end_ms
    faust_range = faust.TumblingWindow(window_s).current(at_ms / 1000)
    assert faust_range[0] == window.start_s
    # faust keys by the window's start: any instant inside gives the same table key
    assert faust.TumblingWindow(window_s).current(window.start_s) == faust_range


def test_event_time_is_the_gateway_clock_else_the_record_time() -> None:
    envelope = Envelope(player_id="p1")
    assert event_time_ms(envelope, record_timestamp_ms=T0_MS) == T0_MS
    envelope.received_at.FromMilliseconds(T0_MS - 5_000)
    assert event_time_ms(envelope, record_timestamp_ms=T0_MS) == T0_MS - 5_000


def test_tally_counts_types_and_remembers_the_last_offset_per_partition() -> None:
    tally = WindowTally().add("match_result", ACTIONS_0, 7).add("score_submitted", SCORES_0, 3)
    tally = tally.add("match_result", ACTIONS_0, 8)
    assert tally.count == 3
    assert tally.event_types == {"match_result", "score_submitted"}
    assert tally.offsets == {ACTIONS_0: 8, SCORES_0: 3}
    assert tally.has_counted(ACTIONS_0, 8) and tally.has_counted(ACTIONS_0, 2)
    assert not tally.has_counted(ACTIONS_0, 9)
    assert not tally.has_counted(source_of("player.actions.v1", 1), 0)


@given(
    count=st.integers(min_value=0, max_value=10_000),
    types=st.frozensets(st.sampled_from(["daily_login", "match_result", "score_submitted"])),
    flagged=st.booleans(),
    offsets=st.dictionaries(st.text(min_size=1), st.integers(min_value=0), max_size=3),
)
def test_tally_survives_the_changelog_round_trip(
    count: int, types: frozenset[str], flagged: bool, offsets: dict[str, int]
) -> None:
    tally = WindowTally(count, types, flagged, offsets)
    assert WindowTally.from_json(tally.to_json()) == tally


@pytest.mark.parametrize("stored", [None, {}])
def test_a_window_not_seen_yet_is_an_empty_tally(stored: dict[str, object] | None) -> None:
    assert WindowTally.from_json(stored) == WindowTally()


def tally_of(count: int, *, flagged: bool = False) -> WindowTally:
    tally = WindowTally()
    for offset in range(count):
        tally = tally.add("match_result", ACTIONS_0, offset)
    return tally.mark_flagged() if flagged else tally


def test_flag_once_the_count_goes_above_the_threshold() -> None:
    assert not should_flag(tally_of(120), max_events_per_window=120)
    assert should_flag(tally_of(121), max_events_per_window=120)
    assert should_flag(tally_of(150), max_events_per_window=120)


def test_never_flag_a_window_twice() -> None:
    assert not should_flag(tally_of(121, flagged=True), max_events_per_window=120)
    assert not should_flag(tally_of(500, flagged=True), max_events_per_window=120)


def test_flag_id_depends_only_on_player_and_window() -> None:
    window = window_for(T0_MS, 60)
    assert flag_event_id("p1", window) == flag_event_id("p1", window_for(T0_MS + 59_000, 60))
    assert flag_event_id("p1", window) != flag_event_id("p2", window)
    assert flag_event_id("p1", window) != flag_event_id("p1", window_for(T0_MS + 60_000, 60))
    # same start, another window size: another window, another id
    assert flag_event_id("p1", window) != flag_event_id("p1", window_for(T0_MS, 120))


def tipping_event() -> Envelope:
    source = Envelope(event_id="e-121", idempotency_key="k-121", player_id="p1")
    source.received_at.FromMilliseconds(T0_MS + 30_000)
    source.occurred_at.FromMilliseconds(T0_MS + 29_000)
    source.trace.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    source.match_result.match_id = "m-9"
    return source


def test_flag_envelope_names_the_player_window_count_threshold_and_types() -> None:
    window = window_for(T0_MS + 30_000, 60)
    tally = WindowTally().add("score_submitted", SCORES_0, 0).add("match_result", ACTIONS_0, 0)
    flag = flag_envelope(tipping_event(), window, tally, max_events_per_window=1)
    assert flag.player_id == "p1"
    assert flag.event_id == flag.idempotency_key == flag_event_id("p1", window)
    assert flag.WhichOneof("payload") == "player_flagged"
    body = flag.player_flagged
    assert body.reason == FLAG_REASON_VELOCITY
    assert (body.event_count, body.threshold) == (2, 1)
    assert list(body.event_types) == ["match_result", "score_submitted"]
    assert body.window_start.ToMilliseconds() == T0_MS
    assert body.window_end.ToMilliseconds() == T0_MS + 60_000
    # latency and tracing follow the event that tipped the window over
    assert flag.received_at.ToMilliseconds() == T0_MS + 30_000
    assert flag.trace.traceparent == tipping_event().trace.traceparent


def test_a_replay_of_the_tipping_event_yields_the_same_bytes() -> None:
    window = window_for(T0_MS, 60)
    tally = tally_of(3)
    first = flag_envelope(tipping_event(), window, tally, max_events_per_window=2)
    again = flag_envelope(tipping_event(), window, tally, max_events_per_window=2)
    assert encode(first) == encode(again)
