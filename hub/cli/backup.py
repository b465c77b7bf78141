"""``retail-hub backup`` and ``retail-hub restore``."""

from __future__ import annotations

from pathlib import Path

import click

from hub.backup import backup as make_backup
from hub.backup import restore as restore_backup
from hub.cli.common import config_option, load, reports_errors


@click.command()
@click.option("--to", "folder", type=click.Path(path_type=Path, file_okay=False),
              help="Folder for the backup files [default: backups/ beside the database].")
@click.option("--keep", type=click.IntRange(1, 10_000), help="Keep only the newest N backups.")
@config_option
@reports_errors
def backup(folder: Path | None, keep: int | None, config_path: Path) -> None:
    """Copy the database while the hub keeps running."""
    database = load(config_path).store.database
    # Beside the database, not the working directory: a backup run from anywhere lands where
    # the next one (and a restore) will look.
    target = make_backup(database, folder or database.parent / "backups", keep)
    click.echo(f"backup written to {target}")


@click.command()
@click.argument("backup_file", type=click.Path(path_type=Path))
@config_option
@reports_errors
def restore(backup_file: Path, config_path: Path) -> None:
    """Put BACKUP_FILE in place of the database (the hub must be stopped).

    The replaced database is kept beside it, and the next start begins a new sync epoch.
    """
    config = load(config_path)
    kept = restore_backup(backup_file, config.store.database)
    click.echo(f"restored {backup_file} to {config.store.database}")
    if kept is not None:
        click.echo(f"the replaced database was kept as {kept}")
