"""The rewards processor: player actions and purchases in, wallet changes and RewardGranted out.

One concept per module: `actions` (what an event asks for), `rules` and `campaigns` (versioned
data saying what it earns), `settle` (caps, purchases, claw-backs, balances: pure), `ledger`
(the MySQL reads and writes of one batch), `verify` (the ledger recomputed), `processor` (the
runtime's contract) and `cli` (`liveops rewards ...`).
"""
