"""`liveops topics ...`, `liveops tail` and `liveops dev broker ...`."""

from __future__ import annotations

import typer

from topics import devbroker

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
