"""``retail-hub run``: the hub itself."""

from __future__ import annotations

from pathlib import Path

import click

from hub import logs
from hub.app import RunningHub
from hub.cli.common import check_files, config_option, load, serve


@click.command()
@config_option
@click.pass_context
def run(ctx: click.Context, config_path: Path) -> None:
    """Run the hub until Ctrl-C."""
    cfg = load(config_path)
    logs.configure(ctx.find_root().params.get("verbose", False), store_id=cfg.store.id)
    check_files(cfg, config_path)

    def started(hub: RunningHub) -> None:
        click.echo(f"retail hub for store {cfg.store.id} serving at {hub.url}")

    serve(cfg, started)
