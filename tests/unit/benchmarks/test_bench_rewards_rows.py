"""The same_rows reference replays what the processor wrote, per 500 events: the grouping and
the derived wallet deltas and cap counters must match those rows (nothing is timed here)."""

from __future__ import annotations

from datetime import date

from bench.rewards_rows import _COLUMNS, _transactions


def ledger_row(
    key: str, player: str, asset: str, amount: int, kind: str = "currency"
) -> tuple[object, ...]:
    values = dict.fromkeys(_COLUMNS, None)
    values.update(
        idempotency_key=key, player_id=player, asset_kind=kind, asset_id=asset, amount=amount
    )
    values["reason"] = "level_completed"
    return tuple(values[column] for column in _COLUMNS)


def test_rows_are_grouped_per_transaction_and_deltas_derived_from_the_ledger() -> None:
    # Given two transactions of 2 events: a two-asset grant, a refusal, an item, a grant
    claims = [("rewards", f"bench-{n}", f"bench-{n}") for n in range(4)]
    ledger = [
        ledger_row("bench-0", "p1", "coins", 150),
        ledger_row("bench-0", "p1", "gems", 1),
        ledger_row("bench-2", "p1", "sword", 1, kind="item"),
        ledger_row("bench-3", "p1", "coins", 100),
    ]
    refusals = [("rewards", "bench-1", "p2", "bench-1", "capped", "over the cap", None, None)]

    # When they are split into transactions of 2 events
    first, second = _transactions(claims, ledger, refusals, per_txn=2)

    # Then each transaction holds its own events' rows
    assert [c[1] for c in first["claims"]] == ["bench-0", "bench-1"]
    assert len(first["ledger"]) == 2 and first["refusals"] == refusals
    assert [c[1] for c in second["claims"]] == ["bench-2", "bench-3"]
    # And wallet and inventory deltas sum the ledger per player and asset
    assert first["wallet"] == [("p1", "coins", 150), ("p1", "gems", 1)]
    assert second["wallet"] == [("p1", "coins", 100)] and second["inventory"] == [
        ("p1", "sword", 1)
    ]
    # And one cap counter per player, day and reason counts the granted events
    (player, day, reason, grants) = second["counters"][0]
    assert (player, reason, grants) == ("p1", "level_completed", 2)
    assert isinstance(day, date) and first["counters"][0][3] == 1
