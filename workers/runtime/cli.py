"""`liveops worker NAME|all` and `liveops dlq list|show|replay GROUP`.

Mounted by workers/cli.py, which reads the settings once and hands them down in ctx.obj.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aiohttp
import typer

from schemas.codec import payload_type
from schemas.redaction import scrub_for
from topics.catalog import CONSUMER_GROUPS, ConsumerGroup
from workers.processors.probe import DEMO_GROUP
from workers.processors.registry import UnknownProcessorError, factories_for
from workers.runtime import dlq, headers
from workers.runtime.context import ProcessorFactory, open_context
from workers.runtime.records import InboundRecord
from workers.runtime.worker import Worker
from workers.settings import FleetSettings

dlq_app = typer.Typer(help="Dead letters: list, show, replay.", no_args_is_help=True)
GroupArgument = typer.Argument(help="Processor or group name: rewards, liveops.rewards, ...")
MaxOption = typer.Option(100, "--max", min=1, help="At most this many dead letters.")


def run_worker(
    ctx: typer.Context,
    name: str = typer.Argument(help="A registered processor, or `all`."),
    check: bool = typer.Option(
        False, "--check", help="Probe the worker on this host instead: exit 0 when /readyz is OK."
    ),
) -> None:
    """Run one processor (or every registered one) until SIGTERM or SIGINT."""
    settings: FleetSettings = ctx.obj
    if check:
        raise typer.Exit(0 if asyncio.run(_ready(settings.metrics_port)) else 1)
    try:
        factories = factories_for(name)
    except UnknownProcessorError as exc:
        typer.echo(f"liveops: {exc}", err=True)
        raise typer.Exit(2) from None
    asyncio.run(_serve(settings, factories))


async def _serve(settings: FleetSettings, factories: dict[str, ProcessorFactory]) -> None:
    async with open_context(settings) as context:
        processors = [factory(context) for factory in factories.values()]
        worker = Worker(
            context, processors, runtime=settings.runtime, metrics_port=settings.metrics_port
        )
        await worker.run(handle_signals=True)


async def _ready(port: int) -> bool:
    url = f"http://127.0.0.1:{port}/readyz"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session,
            session.get(url) as response,
        ):
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


def group_named(name: str) -> ConsumerGroup:
    processor = name.removeprefix("liveops.")
    for group in (*CONSUMER_GROUPS, DEMO_GROUP):
        if group.processor == processor:
            return group
    known = ", ".join(g.processor for g in (*CONSUMER_GROUPS, DEMO_GROUP))
    typer.echo(f"liveops: no consumer group {name!r}; known: {known}", err=True)
    raise typer.Exit(2)


@dlq_app.command("list")
def dlq_list(ctx: typer.Context, group: str = GroupArgument) -> None:
    """Dead letters per partition: total and still pending a replay."""
    consumer_group = group_named(group)

    async def read() -> list[dlq.PartitionState]:
        async with dlq.DeadLetterReader(ctx.obj.kafka, consumer_group) as reader:
            return await reader.state()

    states = asyncio.run(read())
    typer.echo(f"{consumer_group.dead_letter.name}")
    for state in states:
        typer.echo(f"  partition {state.partition}: {state.total} total, {state.pending} pending")
    typer.echo(f"  pending: {sum(s.pending for s in states)}")


@dlq_app.command("show")
def dlq_show(ctx: typer.Context, group: str = GroupArgument, max_records: int = MaxOption) -> None:
    """Pending dead letters, decoded, with the reason headers (never the payload body)."""
    consumer_group = group_named(group)

    async def read() -> list[InboundRecord]:
        async with dlq.DeadLetterReader(ctx.obj.kafka, consumer_group) as reader:
            return await reader.pending(max_records)

    for record in asyncio.run(read()):
        typer.echo(describe(record))


@dlq_app.command("replay")
def dlq_replay(
    ctx: typer.Context,
    group: str = GroupArgument,
    max_records: int = MaxOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be replayed."),
) -> None:
    """Republish pending dead letters to their original topic; never repeats a replay."""
    consumer_group = group_named(group)
    try:
        records = asyncio.run(
            dlq.replay(ctx.obj.kafka, consumer_group, max_records=max_records, dry_run=dry_run)
        )
    except dlq.ReplayRefusedError as exc:
        typer.echo(f"liveops: {exc}; nothing replayed", err=True)
        raise typer.Exit(1) from None
    for record in records:
        typer.echo(("would replay " if dry_run else "replayed ") + describe(record))
    typer.echo(f"{len(records)} dead letters {'to replay' if dry_run else 'replayed'}")


def describe(record: InboundRecord) -> str:
    """One line per dead letter: where, what, why. Payload bodies (receipts, tokens) never,
    nor a sensitive value the error message quotes (schemas/redaction.py)."""
    envelope = dlq.decoded(record)
    what = (
        f"event {envelope.event_id} player {envelope.player_id} {payload_type(envelope)}"
        if envelope is not None
        else f"undecodable ({len(record.value or b'')} bytes)"
    )
    message = record.header(headers.ERROR_MESSAGE)
    if message is not None and envelope is not None:
        message = scrub_for(message, [envelope])
    return (
        f"{record.partition}/{record.offset} {what} | "
        f"{record.header(headers.ERROR_CLASS)}: {message} | "
        f"attempt {record.header(headers.ATTEMPT)} "
        f"from {record.header(headers.ORIGINAL_TOPIC)}/{record.header(headers.ORIGINAL_PARTITION)}"
        f"/{record.header(headers.ORIGINAL_OFFSET)} "
        f"first {_when(record.header(headers.FIRST_FAILURE_AT))} "
        f"last {_when(record.header(headers.LAST_FAILURE_AT))} "
        f"digest {record.header(headers.STACK_DIGEST)} "
        f"by {record.header(headers.PROCESSOR)} v{record.header(headers.PROCESSOR_VERSION)}"
    )


def _when(ms: str | None) -> str:
    if not ms or not ms.isdigit():
        return "?"
    return datetime.fromtimestamp(int(ms) / 1000, UTC).isoformat(timespec="seconds")
