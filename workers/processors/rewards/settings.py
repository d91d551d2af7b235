"""Settings of the rewards processor (the `rewards` section handed down by the CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: The rules and campaigns shipped with the package; a deployment points `rules_path` elsewhere.
PACKAGED_RULES = Path(__file__).resolve().parent / "rules.toml"

#: What a claw-back does when the player has already spent the asset: record the shortfall as
#: debt (paid back by later grants) or refuse the claw-back (recorded as refused).
NegativeBalancePolicy = Literal["debt", "reject"]


class RewardsSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: TOML file with rules, caps and campaigns; re-read when it changes, no deploy needed.
    rules_path: Path = PACKAGED_RULES
    #: How often the processor looks at the file's modification time.
    reload_interval_s: float = Field(default=5.0, ge=0)
    negative_balance: NegativeBalancePolicy = "debt"
