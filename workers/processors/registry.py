"""Every processor a worker can run, by name: `liveops worker NAME` and `liveops worker all`."""

from __future__ import annotations

from schemas.errors import LiveopsError
from workers.processors.leaderboards.factory import build_leaderboards_processor
from workers.processors.probe import probe_factory
from workers.processors.rewards.processor import rewards_factory
from workers.runtime.context import ProcessorFactory

#: Name -> factory. Each domain adds its line here.
PROCESSORS: dict[str, ProcessorFactory] = {
    "probe": probe_factory(),
    "rewards": rewards_factory(),
    "leaderboards": build_leaderboards_processor,
}
#: Runnable by name but not part of `liveops worker all` (test and demo processors).
NOT_IN_ALL = frozenset({"probe"})


class UnknownProcessorError(LiveopsError):
    """No processor is registered under this name."""


def factories_for(name: str) -> dict[str, ProcessorFactory]:
    """The factories `liveops worker NAME` runs: one, or every production one for `all`."""
    if name == "all":
        return {n: f for n, f in PROCESSORS.items() if n not in NOT_IN_ALL}
    try:
        return {name: PROCESSORS[name]}
    except KeyError:
        known = ", ".join(sorted(PROCESSORS))
        raise UnknownProcessorError(f"no processor named {name!r}; known: {known}, all") from None
