"""``retail-hub catalog``: import products from CSV or JSON."""

from __future__ import annotations

from pathlib import Path

import click

from hub.cli.common import config_option, open_services, print_json, reports_errors


@click.group()
def catalog() -> None:
    """The product catalogue."""


@catalog.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--images", type=click.Path(path_type=Path, file_okay=False),
              help="Folder of the product images named in FILE (default: FILE's folder).")
@config_option
@reports_errors
def import_(file: Path, images: Path | None, config_path: Path) -> None:
    """Import FILE (.csv or .json). Bad rows are reported and skipped; re-import is harmless."""
    with open_services(config_path) as svc:
        report = svc.catalog.import_file(file, images)
    print_json(report.to_json())
    if report.rejected:
        raise SystemExit(1)
