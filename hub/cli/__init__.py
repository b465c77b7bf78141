"""The ``retail-hub`` command line. Each area's commands live in their own module; this file only
names them.

Why the modules load lazily: importing every area pulls in the speech engines, Bluetooth, ONNX
Runtime and the web server, which made every command, even ``retail-hub config check``, wait about
two seconds here (far longer on a Pi) before doing anything; now a command imports only its own.
"""

from __future__ import annotations

import importlib
import os

import click

from hub import logs

#: Command name -> "module:attribute" of its click command, imported on first use.
COMMANDS = {
    "run": "hub.cli.run:run",
    "demo": "hub.cli.demo:demo",
    "config": "hub.cli.config:config",
    "catalog": "hub.cli.catalog:catalog",
    "stock": "hub.cli.stock:stock",
    "orders": "hub.cli.orders:orders",
    "doctor": "hub.cli.doctor:doctor",
    "backup": "hub.cli.backup:backup",
    "restore": "hub.cli.backup:restore",
    "shop": "hub.cli.shop:shop",
    "broker": "hub.cli.broker:broker",
    "vision": "hub.cli.vision:vision",
    "voice": "hub.cli.voice:voice",
    "beacons": "hub.cli.beacons:beacons",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported when they are looked up, not when it is built."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """The in-store retail hub."""
    # The databases, their backups and the shop's hold members' beacon keys: what any command
    # writes is for its own user only (a backup run from a shell with umask 022 was readable by
    # every local user, the kiosk's auto-login user included).
    os.umask(os.umask(0o077) | 0o077)
    logs.configure(verbose)
