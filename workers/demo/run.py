"""`liveops demo`: the whole fleet on this machine, a scripted session of players, a summary.

Starts the embedded broker, checks Redis and MySQL, applies topics and migrations, starts the
gateway and every production worker in this process, plays the script through HTTP, waits until
the workers have committed everything, prints the summary and stops what it started.
"""

from __future__ import annotations

import aiohttp

from schemas.errors import LiveopsError
from topics.catalog import PLAYER_ACTIONS
from workers.demo.checks import failed_checks
from workers.demo.faults import publish_garbage, republish_first_records
from workers.demo.players import PlayerSession
from workers.demo.season import play_season, prize_winners
from workers.demo.stack import DemoPrerequisiteError, Say, demo_stack
from workers.demo.summary import render, wait_until_drained
from workers.settings import FleetSettings

DEMO_BOARD = "arena-weekly"
#: Records of player.actions.v1 the demo publishes a second time, as a producer retry would.
DEMO_REPUBLISHED = 10


async def run_demo(settings: FleetSettings) -> int:
    """Return the exit code: 0 when the story played out and the workers drained."""
    say = Say()
    try:
        async with demo_stack(settings, say) as stack, aiohttp.ClientSession() as http:
            session = PlayerSession(stack.gateway_url, stack.jwt_secret, http, DEMO_BOARD)
            report = await session.play()
            say(
                f"played the script: {sum(report.statuses.values())} requests from "
                f"{len(report.players)} players"
            )
            kafka = stack.settings.kafka
            republished = await republish_first_records(kafka, PLAYER_ACTIONS, DEMO_REPUBLISHED)
            await publish_garbage(kafka, PLAYER_ACTIONS, key=report.players[0].encode())
            say(f"published {republished} records twice and one garbage record below the gateway")
            drained = await wait_until_drained(stack)
            story = await play_season(stack, session, DEMO_BOARD)
            say(f"season end: {story.board_id} {story.period} closed, prizes announced")
            drained = drained and await wait_until_drained(stack)
            say(
                "workers drained: every input committed"
                if drained
                else "workers did NOT drain within the deadline"
            )
            winners = await prize_winners(stack)
            text, observed = await render(stack, report, drained, republished, story, winners)
            print(text, flush=True)
            failures = failed_checks(observed)
    except DemoPrerequisiteError as exc:
        print(f"liveops demo: {exc}", flush=True)
        return 1
    except LiveopsError as exc:
        print(f"liveops demo failed: {exc}", flush=True)
        return 1
    return 0 if not failures else 1
