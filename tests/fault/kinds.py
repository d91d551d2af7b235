"""Which processor a fault test drives: the probe, rewards or leaderboards, on the test's group.

The faults and the waits are the same for every processor; what differs is gathered here: the
payloads its input topic carries, how the plan fills each event, the LIVEOPS_* settings its
worker needs (rules or board files written in the test's own directory) and the reader that
knows its exact expected final state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, Protocol

from workers.db import MySQLTarget

from .checker import StateReader
from .events import EventPlan, PayloadFiller, fill_daily_login
from .leaderboards_check import (
    LEADERBOARDS,
    FaultBoards,
    LeaderboardsReader,
    definitions_toml,
)
from .leaderboards_check import PAYLOADS as LEADERBOARD_PAYLOADS
from .rewards_check import PAYLOADS as REWARD_PAYLOADS
from .rewards_check import REWARDS, RULES_TOML, RewardsReader, fill_action

#: The probe's dedup scope and the name its rows carry in processed_events.
PROBE: Final = "probe"
KindName = Literal["probe", "rewards", "leaderboards"]
REAL_PROCESSORS: tuple[KindName, ...] = (REWARDS, LEADERBOARDS)
#: What each processor's input topic carries (as the catalog topic it really reads).
PAYLOADS: dict[KindName, frozenset[str]] = {
    PROBE: frozenset({"daily_login"}),
    REWARDS: REWARD_PAYLOADS,
    LEADERBOARDS: LEADERBOARD_PAYLOADS,
}
#: How often the leaderboards worker copies a journal left behind by a fault (default 5 s).
JOURNAL_COPY_INTERVAL_S = 1.0


class EffectReader(Protocol):
    """Reads one test's effects directly (never through a fault proxy) and judges them."""

    async def applied_count(self) -> int:
        """Events with a durable effect so far: the progress of a run."""

    async def in_flight(self) -> int:
        """Work claimed or half-done (leases, journal entries): what a kill leaves behind."""

    async def problems(self, plan: EventPlan, *, redis_lost: bool = False) -> list[str]:
        """Every way the effects differ from the plan; empty when exact. redis_lost: Redis
        was flushed on purpose, so only what must survive that is checked."""


@dataclass(frozen=True)
class PreparedKind:
    """One processor, set up for one test."""

    name: KindName
    payloads: frozenset[str]
    fill: PayloadFiller
    reader: EffectReader
    #: Extra LIVEOPS_* variables of its workers.
    env: dict[str, str] = field(default_factory=dict)


def prepare_kind(
    name: KindName, *, target: MySQLTarget, redis_url: str, unique: str, work_dir: Path
) -> PreparedKind:
    """Write the processor's files into `work_dir` and build its reader for this test."""
    if name == PROBE:
        reader = StateReader(target, redis_url, key_prefix=unique, processor=PROBE, ids=unique)
        return PreparedKind(PROBE, PAYLOADS[PROBE], fill_daily_login, reader)
    if name == REWARDS:
        rules = work_dir / "rewards-rules.toml"
        rules.write_text(RULES_TOML, encoding="utf-8")
        return PreparedKind(
            REWARDS,
            PAYLOADS[REWARDS],
            fill_action,
            RewardsReader(target, redis_url, key_prefix=unique),
            {"LIVEOPS_REWARDS__RULES_PATH": str(rules)},
        )
    # Board ids must be this test's alone: MySQL's journal is keyed by board, not prefix.
    boards = FaultBoards(tag="f" + unique.rsplit("-", 1)[-1].lower())
    definitions = work_dir / "leaderboards.toml"
    definitions.write_text(definitions_toml(boards.tag), encoding="utf-8")
    return PreparedKind(
        LEADERBOARDS,
        PAYLOADS[LEADERBOARDS],
        boards.filler(),
        LeaderboardsReader(target, redis_url, key_prefix=unique, boards=boards),
        {
            "LIVEOPS_LEADERBOARDS__DEFINITIONS_PATH": str(definitions),
            "LIVEOPS_LEADERBOARDS__JOURNAL_COPY_INTERVAL_S": str(JOURNAL_COPY_INTERVAL_S),
        },
    )
