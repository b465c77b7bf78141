"""``retail-hub doctor``: is this machine ready to run the hub?"""

from __future__ import annotations

import json
from pathlib import Path

import click

from hub.cli.common import config_option, load
from hub.doctor import run_checks

MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def doctor(config_path: Path, as_json: bool) -> None:
    """Check the adapter, BlueZ, models, broker, clock, disk, database and secret files; exit 1
    on a failure."""
    findings = run_checks(load(config_path))
    if as_json:
        click.echo(json.dumps([f.to_json() for f in findings], indent=2))
    else:
        for f in findings:
            click.echo(f"[{MARK[f.status]}] {f.check}: {f.detail}")
            if f.fix:
                click.echo(f"         fix: {f.fix}")
    if any(f.status == "fail" for f in findings):
        raise SystemExit(1)
