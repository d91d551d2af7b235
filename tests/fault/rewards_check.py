"""The rewards processor under fault: its plan, its rules file, and its exact expected ledger.

The test writes its own small rules file (no caps, no campaigns, distinct amounts), so what
every event earns is a function of the event alone, written out again below in plain Python
(`expected_grants`), independently of the processor's rules engine. From the plan the checker
then knows, for this test's players, every ledger row (one per event and asset) and every
wallet and inventory total, and compares them with MySQL exactly: a lost event is a missing
row and a total too low, a double grant a total too high (the ledger's unique key would hide it
in the rows, the derived wallet would not).
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Final

from schemas.liveops.v1 import actions_pb2
from schemas.liveops.v1.envelope_pb2 import Envelope
from workers.db import MySQLTarget, create_pool
from workers.processors.rewards.audit import VerifyReport, find_mismatches

from .checker import StateReader, like_pattern, query
from .events import EventPlan

#: The processor name: its dedup scope, metric label and processed_events rows.
REWARDS: Final = "rewards"
PAYLOADS = frozenset({"level_completed", "quest_completed", "daily_login", "match_result"})
TUTORIAL = "tutorial"
SWORD = "fault-sword"

RULES_TOML = f"""
# Rules of the rewards fault tests: no caps and no campaigns, so every event's grants follow
# from the event alone (tests/fault/rewards_check.py computes them again independently).
[[rules]]
id = "fault-level-three-stars"
version = 1
action = "level_completed"
when = {{ min_stars = 3 }}
grants = [{{ asset = "coins", amount = 150 }}, {{ asset = "gems", amount = 1 }}]

[[rules]]
id = "fault-level"
version = 1
action = "level_completed"
grants = [{{ asset = "coins", amount = 100 }}]

[[rules]]
id = "fault-quest-tutorial"
version = 1
action = "quest_completed"
when = {{ quest_id = "{TUTORIAL}" }}
grants = [{{ asset = "gems", amount = 20 }}, {{ asset = "{SWORD}", kind = "item", amount = 1 }}]

[[rules]]
id = "fault-quest"
version = 1
action = "quest_completed"
grants = [{{ asset = "coins", amount = 250 }}]

[[rules]]
id = "fault-login-streak-7"
version = 1
action = "daily_login"
when = {{ min_streak_days = 7 }}
grants = [{{ asset = "coins", amount = 300 }}, {{ asset = "gems", amount = 5 }}]

[[rules]]
id = "fault-login"
version = 1
action = "daily_login"
grants = [{{ asset = "coins", amount = 50 }}]

[[rules]]
id = "fault-match-won-ranked"
version = 1
action = "match_won"
when = {{ mode = "ranked" }}
grants = [{{ asset = "coins", amount = 200 }}, {{ asset = "trophies", amount = 10 }}]

[[rules]]
id = "fault-match-won"
version = 1
action = "match_won"
grants = [{{ asset = "coins", amount = 80 }}]
"""

#: (asset kind, asset id) as the ledger names them.
Asset = tuple[str, str]


def fill_action(rng: random.Random, envelope: Envelope) -> None:
    """One of the four gameplay actions, with the facts the rules above look at."""
    choice = rng.randrange(4)
    if choice == 0:
        envelope.level_completed.level_id = f"level-{rng.randrange(1, 60)}"
        envelope.level_completed.stars = rng.randrange(4)
    elif choice == 1:
        quest = TUTORIAL if rng.random() < 0.2 else f"quest-{rng.randrange(1, 30)}"
        envelope.quest_completed.quest_id = quest
    elif choice == 2:
        envelope.daily_login.streak_days = rng.randrange(1, 11)
        envelope.daily_login.local_date = "2026-11-25"
    else:
        match = envelope.match_result
        match.match_id = f"m-{rng.randrange(10**9)}"
        match.mode = rng.choice(("ranked", "casual"))
        # A lost match earns nothing: no ledger row, no refusal row, but it is processed.
        won = rng.random() < 0.7
        match.outcome = actions_pb2.MATCH_OUTCOME_WIN if won else actions_pb2.MATCH_OUTCOME_LOSS


def expected_grants(envelope: Envelope) -> dict[Asset, int]:
    """What RULES_TOML grants for this event, asset by asset (written out by hand)."""
    payload = envelope.WhichOneof("payload")
    if payload == "level_completed":
        if envelope.level_completed.stars >= 3:
            return {("currency", "coins"): 150, ("currency", "gems"): 1}
        return {("currency", "coins"): 100}
    if payload == "quest_completed":
        if envelope.quest_completed.quest_id == TUTORIAL:
            return {("currency", "gems"): 20, ("item", SWORD): 1}
        return {("currency", "coins"): 250}
    if payload == "daily_login":
        if envelope.daily_login.streak_days >= 7:
            return {("currency", "coins"): 300, ("currency", "gems"): 5}
        return {("currency", "coins"): 50}
    if payload == "match_result":
        if envelope.match_result.outcome != actions_pb2.MATCH_OUTCOME_WIN:
            return {}
        if envelope.match_result.mode == "ranked":
            return {("currency", "coins"): 200, ("currency", "trophies"): 10}
        return {("currency", "coins"): 80}
    raise AssertionError(f"the rewards plan sent an unexpected {payload}")


@dataclass(frozen=True)
class RewardsState:
    #: (idempotency key, asset) -> (player, amount, source event id), from reward_ledger.
    ledger: dict[tuple[str, Asset], tuple[str, int, str]]
    #: idempotency keys in processed_events for the rewards processor.
    durable_keys: frozenset[str]
    #: (player, asset) -> net, from wallet_balances and inventory_items.
    wallets: dict[tuple[str, Asset], int]
    #: refusal rows of this test's players (none expected: no caps, every action has a rule).
    refusals: int


#: A transaction of SHOW ENGINE INNODB STATUS that is open and has written rows.
_WRITING_TRANSACTION = re.compile(r"---TRANSACTION \d+, ACTIVE[^\n]*\n[^\n]*undo log entries [1-9]")


class RewardsReader:
    """This test's slice of the rewards tables (a direct link, never through a fault proxy)."""

    name = REWARDS

    def __init__(self, target: MySQLTarget, redis_url: str, *, key_prefix: str) -> None:
        self.target = target
        self.key_prefix = key_prefix
        self.like = like_pattern(key_prefix)
        # Leases live in the runtime's dedup keys, as for the probe.
        self._leases = StateReader(
            target, redis_url, key_prefix=key_prefix, processor=REWARDS, ids=key_prefix
        )

    async def applied_count(self) -> int:
        """Events durably processed so far (granted, or a lost match)."""
        rows = await self._query(
            "SELECT COUNT(*) FROM processed_events WHERE processor = %s AND idempotency_key "
            "LIKE %s",
            (REWARDS, self.like),
        )
        return int(str(rows[0][0]))

    async def in_flight(self) -> int:
        """Leases (under `dedup = runtime`), plus open transactions that wrote rows: a batch
        claimed and not yet committed. The server's, not only this test's: the session runs
        one test at a time, and no other client keeps a write transaction open. Read from
        SHOW ENGINE INNODB STATUS: MariaDB's INNODB_TRX lists a transaction only while one
        of its statements runs, not between them, where a worker's batch spends its time."""
        rows = await self._query("SHOW ENGINE INNODB STATUS", ())
        writing = len(_WRITING_TRANSACTION.findall(str(rows[0][2])))
        return writing + await self._leases.leased_count()

    async def read(self) -> RewardsState:
        ledger = await self._query(
            "SELECT idempotency_key, asset_kind, asset_id, player_id, amount, source_event_id "
            "FROM reward_ledger WHERE source = %s AND player_id LIKE %s",
            (REWARDS, self.like),
        )
        durable = await self._query(
            "SELECT idempotency_key FROM processed_events WHERE processor = %s "
            "AND idempotency_key LIKE %s",
            (REWARDS, self.like),
        )
        wallets = await self._query(
            "SELECT player_id, 'currency', currency, net FROM wallet_balances "
            "WHERE player_id LIKE %s UNION ALL "
            "SELECT player_id, 'item', item_id, net FROM inventory_items WHERE player_id LIKE %s",
            (self.like, self.like),
        )
        refusals = await self._query(
            "SELECT COUNT(*) FROM reward_refusals WHERE player_id LIKE %s", (self.like,)
        )
        return RewardsState(
            ledger={
                (str(key), (str(kind), str(asset))): (str(player), int(str(amount)), str(event))
                for key, kind, asset, player, amount, event in ledger
            },
            durable_keys=frozenset(str(row[0]) for row in durable),
            wallets={
                (str(player), (str(kind), str(asset))): int(str(net))
                for player, kind, asset, net in wallets
            },
            refusals=int(str(refusals[0][0])),
        )

    async def problems(self, plan: EventPlan, *, redis_lost: bool = False) -> list[str]:
        """Every way the ledger and wallets differ from the plan. Redis holds nothing of
        rewards but leases, so a flushed Redis changes no expectation."""
        return ledger_discrepancies(plan, await self.read())

    async def verify(self) -> VerifyReport:
        """What `liveops rewards verify` reports, on the same database."""
        pool = await create_pool(self.target, maxsize=1)
        try:
            async with pool.acquire() as conn:
                return await find_mismatches(conn)
        finally:
            pool.close()
            await pool.wait_closed()

    async def _query(self, sql: str, params: tuple[str, ...]) -> tuple[tuple[object, ...], ...]:
        return await asyncio.to_thread(query, self.target, sql, params)


def ledger_discrepancies(plan: EventPlan, state: RewardsState) -> list[str]:
    """Compare with the ledger rows and totals the plan implies; empty when exact."""
    problems: list[str] = []
    expected_rows: dict[tuple[str, Asset], tuple[str, int]] = {}
    expected_nets: Counter[tuple[str, Asset]] = Counter()
    for key, source in plan.sources.items():
        for asset, amount in expected_grants(source).items():
            expected_rows[(key, asset)] = (source.player_id, amount)
            expected_nets[(source.player_id, asset)] += amount
    missing = sorted(set(expected_rows) - set(state.ledger))
    unexpected = sorted(set(state.ledger) - set(expected_rows))
    if missing:
        problems.append(f"{len(missing)} ledger rows lost, e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} ledger rows nobody earned, e.g. {unexpected[:3]}")
    wrong = sorted(
        row
        for row, (player, amount, event_id) in state.ledger.items()
        if row in expected_rows
        and ((player, amount) != expected_rows[row] or event_id not in plan.event_ids[row[0]])
    )
    if wrong:
        problems.append(f"{len(wrong)} ledger rows with a wrong player, amount or event id")
    if state.durable_keys != set(plan.expected):
        lost = len(set(plan.expected) - state.durable_keys)
        problems.append(
            f"processed_events holds {len(state.durable_keys)} keys, expected "
            f"{len(plan.expected)} ({lost} missing)"
        )
    actual_nets = Counter({k: v for k, v in state.wallets.items() if v})
    wallets: list[str] = []
    for entry in sorted(set(expected_nets) | set(actual_nets)):
        have, want = actual_nets[entry], expected_nets[entry]
        if have != want:
            how = "doubled" if have > want else "lost"
            wallets.append(f"wallet {entry[0]} {entry[1][1]} is {have}, expected {want} ({how})")
    if wallets:
        problems.append(f"{len(wallets)} wallet entries differ: " + "; ".join(wallets[:8]))
    if state.refusals:
        problems.append(f"{state.refusals} refusals recorded; the test's rules refuse nothing")
    return problems
