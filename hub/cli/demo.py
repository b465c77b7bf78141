"""``retail-hub demo``: the demo store on localhost, ready to try."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from hub.app import RunningHub, serve_until_stopped
from hub.config import ConfigError
from hub.demo.store import prepare_demo


@click.command()
@click.option("--data", "data_dir", type=click.Path(path_type=Path, file_okay=False),
              default="var/demo", show_default=True, help="Folder for the demo's files.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
def demo(data_dir: Path, port: int) -> None:
    """Serve the demo store (81 grocery products) until Ctrl-C."""
    try:
        config, report = prepare_demo(data_dir, port)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from None
    click.echo(f"demo catalogue: {report.to_json()['added']} products added, "
               f"{len(report.unchanged)} already there")

    def started(hub: RunningHub) -> None:
        token_file = config.web.staff_token_file
        click.echo(f"\nDemo store '{config.store.name}' is running.")
        click.echo(f"  API:          {hub.url}/api/products?q=oat%20milk")
        click.echo(f"  Health:       {hub.url}/healthz")
        click.echo(f"  Staff token:  in {token_file}")
        click.echo("Press Ctrl-C to stop.")

    asyncio.run(serve_until_stopped(config, started))
