"""`liveops topics ...` (lag among them), `liveops tail` and `liveops dev broker ...`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, NoReturn, Protocol

import typer

from topics import admin, catalog, devbroker, lag, tail
from topics.settings import KafkaSettings

dev_app = typer.Typer(help="The embedded development stack.", no_args_is_help=True)
broker_app = typer.Typer(
    help="The embedded Kafka broker (Tansu, memory only).", no_args_is_help=True
)
dev_app.add_typer(broker_app, name="broker")

PortOption = typer.Option(devbroker.DEFAULT_PORT, help="Port on 127.0.0.1.")


@broker_app.command("start")
def broker_start(port: int = PortOption) -> None:
    """Start the broker in the background (data is lost when it stops)."""
    pid = devbroker.detached_pid(port)
    if pid is not None:
        typer.echo(f"broker already running on 127.0.0.1:{port} (pid {pid})")
        return
    try:
        broker = devbroker.start_detached(port)
    except devbroker.BrokerStartError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"broker started on {broker.bootstrap_servers}; "
        f"export LIVEOPS_KAFKA__BOOTSTRAP_SERVERS={broker.bootstrap_servers}"
    )


@broker_app.command("stop")
def broker_stop(port: int = PortOption) -> None:
    """Stop a broker started with `liveops dev broker start`."""
    stopped = devbroker.stop_detached(port)
    typer.echo("broker stopped" if stopped else f"no broker of ours on port {port}")


@broker_app.command("status")
def broker_status(port: int = PortOption) -> None:
    """Exit 0 when our broker runs and listens, 1 otherwise."""
    pid = devbroker.detached_pid(port)
    listening = devbroker.port_open("127.0.0.1", port)
    if pid is not None and listening:
        typer.echo(f"running on 127.0.0.1:{port} (pid {pid})")
        return
    typer.echo(
        f"not running on port {port}" + (" (port taken by another process)" if listening else "")
    )
    raise typer.Exit(1)


# `liveops topics ...` and `liveops tail`: the catalog against a real cluster.

topics_app = typer.Typer(help="The topic catalog and the cluster.", no_args_is_help=True)

_PLAN_MARKS: dict[type, str] = {
    admin.CreateTopic: "+",
    admin.RaisePartitions: "~",
    admin.ConfigDrift: "~",
    admin.ExtraPartitions: "!",
    admin.UnknownTopic: "?",
}


class _HasKafka(Protocol):
    """What these commands need of the root callback's FleetSettings (topics/ cannot import it)."""

    @property
    def kafka(self) -> KafkaSettings: ...


def _kafka(ctx: typer.Context) -> KafkaSettings:
    settings: _HasKafka = ctx.obj
    return settings.kafka


@contextmanager
def _quiet_client_logs() -> Iterator[None]:
    """aiokafka logs every failed connection attempt; these commands report failures themselves,
    in one line, so its own log lines would only repeat them."""
    logger = logging.getLogger("aiokafka")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@topics_app.command("list")
def topics_list() -> None:
    """Show the catalog: every topic, its shape, owner and retry/dead-letter companions."""
    typer.echo(f"{'NAME':<32} {'PARTS':>5} {'RETAIN':>6} {'KEY':<10} {'OWNER':<13} PAYLOADS")
    for topic in catalog.ALL_TOPICS:
        payloads = ", ".join(sorted(topic.payloads)) or "-"
        typer.echo(
            f"{topic.name:<32} {topic.partitions:>5} {_days(topic.retention_ms):>6} "
            f"{topic.key:<10} {topic.owner:<13} {payloads}"
        )
        for group in catalog.CONSUMER_GROUPS:
            if topic in group.inputs:
                retries = ", ".join(tier.topic.name for tier in group.retry_tiers)
                typer.echo(
                    f"    read by {group.name}: retry {retries}; dlq {group.dead_letter.name}"
                )


def _days(retention_ms: int) -> str:
    if retention_ms % catalog.DAY_MS == 0:
        return f"{retention_ms // catalog.DAY_MS}d"
    return f"{retention_ms}ms"


@topics_app.command("plan")
def topics_plan(ctx: typer.Context) -> None:
    """Compare the catalog with the cluster and print the differences; changes nothing."""
    settings = _kafka(ctx)
    try:
        with _quiet_client_logs():
            plan = asyncio.run(admin.read_plan(settings))
    except admin.BrokerUnreachableError as exc:
        _fail(str(exc))
    changes = [action for action in plan if action.changes_cluster]
    if not plan:
        typer.echo(f"{settings.bootstrap_servers} matches the catalog: nothing to do")
        return
    typer.echo(
        f"plan for {settings.bootstrap_servers}: {len(changes)} change(s) to apply, "
        f"{len(plan) - len(changes)} drift(s) only reported"
    )
    for action in plan:
        typer.echo(f"  {_PLAN_MARKS[type(action)]} {action.describe()}")


@topics_app.command("apply")
def topics_apply(ctx: typer.Context) -> None:
    """Create missing topics, raise partitions and fix configs where the broker allows.

    Never deletes a topic or shrinks one. Exit 1 if the broker is unreachable or a request
    failed; drift the broker cannot fix is reported and exits 0.
    """
    settings = _kafka(ctx)
    try:
        with _quiet_client_logs():
            results = asyncio.run(admin.apply_plan(settings))
    except admin.BrokerUnreachableError as exc:
        _fail(str(exc))
    if not results:
        typer.echo(f"{settings.bootstrap_servers} matches the catalog: nothing done")
        return
    for result in results:
        typer.echo(result.describe())
    if any(result.status is admin.ApplyStatus.FAILED for result in results):
        _fail("some changes failed (see above)")


@topics_app.command("lag")
def topics_lag(
    ctx: typer.Context,
    groups: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="GROUP",
            help="Catalog consumer groups: "
            + ", ".join(g.processor for g in catalog.CONSUMER_GROUPS)
            + " (default: all).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Per group and partition: committed offset, end offset, lag (end - committed).

    GROUP reads its inputs as Kafka group liveops.GROUP; GROUP.retry reads its
    retry tiers as liveops.GROUP.retry. Each gets a total line.
    Committed "-" (null with --json): never committed there, so lag = end offset.
    Lag on one partition only: it is stuck (poison event, stuck worker).
    Lag on every partition: the fleet is too slow for the traffic.
    GROUP.retry lag also counts records still waiting out their retry delay.
    Joins no group and commits nothing: it never disturbs the workers.
    """
    try:
        chosen = lag.groups_named(groups or [], catalog.CONSUMER_GROUPS)
    except KeyError as exc:
        typer.echo(f"error: {exc.args[0]}", err=True)
        raise typer.Exit(2) from None
    echo_lag(_kafka(ctx), lag.targets_of(chosen), as_json=as_json)


def echo_lag(settings: KafkaSettings, targets: Sequence[lag.LagTarget], *, as_json: bool) -> None:
    """Read the targets' lag and print it as `liveops topics lag` does (table, or JSON lines).

    Exit 1 with one line when the broker is unreachable or a topic is missing. Also the body of
    `liveops stream lag`, which reads the velocity job's group.
    """
    try:
        with _quiet_client_logs():
            found = asyncio.run(lag.read_lag(settings, targets))
    except (admin.BrokerUnreachableError, tail.TopicNotOnClusterError) as exc:
        _fail(str(exc))
    for line in lag.render_json(found) if as_json else lag.render_table(found):
        typer.echo(line)


def tail_command(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="A catalog topic name.")],
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Start at the oldest record, not the end.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    max_records: Annotated[
        int | None, typer.Option("--max", min=1, help="Stop after this many records.")
    ] = None,
    timeout_s: Annotated[
        float | None,
        typer.Option("--timeout-s", min=0, help="Stop after this many seconds with no record."),
    ] = None,
) -> None:
    """Print a topic's records decoded to JSON, with partition, offset, key and headers.

    Joins no consumer group and commits nothing, so it never disturbs the workers.
    """
    try:
        found = catalog.topic_named(topic)
    except KeyError as exc:
        _fail(str(exc.args[0]))
    options = tail.TailOptions(from_beginning, max_records, timeout_s, as_json)
    try:
        with _quiet_client_logs():
            asyncio.run(tail.tail_topic(_kafka(ctx), found, options, typer.echo))
    except (admin.BrokerUnreachableError, tail.TopicNotOnClusterError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
