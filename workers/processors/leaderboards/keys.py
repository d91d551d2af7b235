"""Every Redis key the leaderboards write, built in one place.

Board ids match [a-z0-9_-] and period keys have no colon, so no key can be read as another:
- `{prefix}:lb:{board}:{period}`          sorted set: player id -> sort value (encoding.py)
- `{prefix}:lb:{board}:{period}:subs`     hash: player id -> accepted submissions (rate limit)
- `{prefix}:lb:{board}:{period}:closed`   marker: the period is archived, refuse submissions
- `{prefix}:lb:{board}:{period}:closing`  lock held by the one worker archiving the period
- `{prefix}:lb:{board}:{period}:announced` marker: the broker acknowledged the period's prizes
- `{prefix}:lb:{board}:{period}:waiting`  unix seconds when a worker first found the period due
  (the lazy closer's max wait counts from it, across restarts and workers)
- `{prefix}:lb:journal`                   stream of applied submissions not yet in MySQL
- `{prefix}:lb-kept:{idempotency key}`    the script's answer to a submission that produced
  outputs, kept as long as its dedup marker, so a redelivery publishes them again
The dedup marker of a submission is the runtime's (workers/runtime/keys.py).
"""

from __future__ import annotations

from workers.runtime import keys as runtime_keys

PROCESSOR = "leaderboards"


def board_key(prefix: str, board_id: str, period: str) -> str:
    return f"{prefix}:lb:{board_id}:{period}"


def submissions_key(prefix: str, board_id: str, period: str) -> str:
    return f"{board_key(prefix, board_id, period)}:subs"


def closed_key(prefix: str, board_id: str, period: str) -> str:
    return f"{board_key(prefix, board_id, period)}:closed"


def closing_lock_key(prefix: str, board_id: str, period: str) -> str:
    return f"{board_key(prefix, board_id, period)}:closing"


def announced_key(prefix: str, board_id: str, period: str) -> str:
    return f"{board_key(prefix, board_id, period)}:announced"


def waiting_key(prefix: str, board_id: str, period: str) -> str:
    return f"{board_key(prefix, board_id, period)}:waiting"


def rebuild_key(prefix: str, board_id: str, period: str) -> str:
    """Scratch sorted set a rebuild fills before it replaces the board in one RENAME."""
    return f"{board_key(prefix, board_id, period)}:rebuild"


def journal_key(prefix: str) -> str:
    return f"{prefix}:lb:journal"


def dedup_key(prefix: str, idempotency_key: str) -> str:
    """The runtime's dedup marker of one submission, checked and set by the scoring script."""
    return runtime_keys.dedup_key(prefix, PROCESSOR, idempotency_key)


def kept_prefix(prefix: str) -> str:
    """The kept answers' keys: this, then the idempotency key (outside `{prefix}:lb:`, where a
    board id and a period could spell any idempotency key)."""
    return f"{prefix}:lb-kept:"


def kept_key(prefix: str, idempotency_key: str) -> str:
    return f"{kept_prefix(prefix)}{idempotency_key}"
