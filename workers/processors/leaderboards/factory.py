"""Build the leaderboards processor from the runtime's WorkerContext (registered by name)."""

from __future__ import annotations

from workers.processors.leaderboards.definitions import load_definitions
from workers.processors.leaderboards.processor import LeaderboardsProcessor
from workers.processors.leaderboards.settings import LeaderboardSettings
from workers.runtime.context import WorkerContext
from workers.settings import FleetSettings


def leaderboard_settings(fleet: FleetSettings) -> LeaderboardSettings:
    """The fleet's `leaderboards` section (LIVEOPS_LEADERBOARDS__*)."""
    return fleet.leaderboards


def build_leaderboards_processor(ctx: WorkerContext) -> LeaderboardsProcessor:
    """Load the definitions file (refusing to start on a bad one) and wire the connections."""
    settings = leaderboard_settings(ctx.settings)
    return LeaderboardsProcessor(
        redis=ctx.redis,
        mysql=ctx.mysql,
        definitions=load_definitions(settings.definitions_path),
        key_prefix=ctx.key_prefix,
        settings=settings,
        kafka=ctx.settings.kafka,
        dedup_ttl_s=ctx.settings.runtime.dedup_ttl_s,
        metrics=ctx.metrics,
    )
