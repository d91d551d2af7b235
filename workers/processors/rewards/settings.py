"""Settings of the rewards processor (the `rewards` section handed down by the CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: The rules and campaigns shipped with the package; a deployment points `rules_path` elsewhere.
PACKAGED_RULES = Path(__file__).resolve().parent / "rules.toml"

#: What an event that would take a balance below zero does: record the shortfall as debt (paid
#: back by later grants) or refuse the event (recorded as refused, nothing written).
NegativeBalancePolicy = Literal["debt", "reject"]


class RewardsSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: TOML file with rules, caps and campaigns; re-read when it changes, no deploy needed.
    rules_path: Path = PACKAGED_RULES
    #: How often the processor looks at the file's modification time.
    reload_interval_s: float = Field(default=5.0, ge=0)
    #: Claw-backs (refunds): the player has usually spent the asset already, so the refund is
    #: owed: `debt` records it, later grants pay it back.
    negative_balance: NegativeBalancePolicy = "debt"
    #: Shop spends (offer_bought) above the balance. `reject` refuses them (insufficient
    #: balance, nothing bought); `debt` would hand out the item on credit.
    spend_negative_balance: NegativeBalancePolicy = "reject"
    #: Who keeps an event from being granted twice (DedupMode). Either way the batch's MySQL
    #: transaction claims each key durably (an atomic check-and-set: the guard that counts).
    #: `processor` (default): the claim alone. `runtime`: the runtime's Redis lease and mark
    #: around handle() as well: two Redis round trips and ~3 us of Redis CPU per event more,
    #: for one courtesy: when a rebalance hands a partition over while its old owner is still
    #: in the batch, the new owner sends the shared events to a retry tier instead of waiting
    #: on the claim's row lock until the old owner commits. A copy of an event already granted
    #: costs the claim a second round trip (it reads the claimed rows, then inserts the rest)
    #: under `processor`; Redis would have skipped it. On this machine (2026-12-07, 20k
    #: events, three `liveops bench rewards` runs) p50 latency was 51-58 against 81-89 ms
    #: (Redis dedup keeps a batch more in flight); throughput was within noise either way
    #: (17.0k, 17.8k, 15.7k ev/s against 16.0k, 16.0k, 17.7k).
    dedup: Literal["runtime", "processor"] = "processor"
