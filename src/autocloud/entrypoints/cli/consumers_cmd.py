"""`autocloud consumers retire ID`: end the broker session of a consumer process that is gone.

Run on the server, with the platform's settings (like `tokens create`): it talks to Mosquitto
and the database directly. See `adapters/mqtt_retire.py` for how nothing queued is lost.
"""

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from autocloud.domain.errors import ConfigurationError
from autocloud.entrypoints.cli.render import console
from autocloud.settings import load_settings

consumers = typer.Typer(
    help="Consumer processes of the single-node tier (Mosquitto shared subscription).",
    no_args_is_help=True,
)


@consumers.command("retire")
def retire(
    consumer_id: Annotated[str, typer.Argument(help="the consumer_id that is no longer run")],
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file")] = None,
    broker: Annotated[str | None, typer.Option(help="mqtt://host:port (Mosquitto)")] = None,
    db: Annotated[str | None, typer.Option(help="postgresql://user@host/db or sqlite:///")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="data directory")] = None,
    stall_timeout: Annotated[
        float, typer.Option(min=1, help="give up (keeping the session) after this many idle s")
    ] = 60.0,
) -> None:
    """Ingest the messages Mosquitto still queues for a stopped consumer, then end its session.

    Stop that consumer first. Afterwards the shared subscription gives all vehicle messages to
    the consumers that remain. Safe to run again: on any failure the session stays as it was,
    minus what was already stored.
    """
    from autocloud.bootstrap import build, consumer_client_id, retire_consumer

    settings = load_settings(
        config, broker=broker, db=db, data_dir=data_dir, consumer_id=consumer_id
    )
    if settings.broker_kind != "mosquitto":
        raise ConfigurationError(
            "consumers retire needs the Mosquitto broker (--broker mqtt://host:port): the "
            "embedded broker has a single consumer"
        )
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    platform = build(settings)
    try:
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
        ) as bar:
            task = bar.add_task(f"draining {consumer_client_id(consumer_id)}")
            drained = retire_consumer(
                platform,
                stall_s=stall_timeout,
                progress=lambda got, stored: bar.update(
                    task, description=f"{got} messages received, {stored} stored"
                ),
            )
    finally:
        platform.stop()
    if drained.session_present:
        console.print(
            f"[bold green]retired[/] consumer {consumer_id}: {drained.messages} queued messages "
            f"ingested, session {drained.client_id} ended"
        )
    else:
        console.print(f"consumer {consumer_id} had no session on the broker: nothing to retire")
