"""The rewards processor: player actions and purchases in, wallet changes and RewardGranted out.

One concept per module: `actions` (what an event asks for), `rules` and `campaigns` (versioned
data saying what it earns), `plan` (per-event decision, pure), `settle` (caps, purchases,
claw-backs, balances of a batch, pure), `ledger` (the MySQL reads and writes of one batch),
`audit` (the ledger recomputed, wallets, recent grants), `processor` (the runtime's contract)
and `cli` (`liveops rewards ...`).

Operating it:
- Rules, caps and campaigns live in a TOML file (`rules.toml` here, or `rules_path`); a running
  worker re-reads it within `reload_interval_s` of a change, and keeps the old rules if the new
  file is invalid. Check a file first: `liveops rewards rules check PATH`.
- `liveops rewards verify` recomputes every wallet and inventory entry from the ledger and
  exits 1 listing each mismatch; `liveops rewards wallet PLAYER` shows a wallet and its grants.
- Player segments for campaign audiences are rows of `player_segments (player_id, segment)`.
"""
