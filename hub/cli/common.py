"""Helpers the CLI commands share: loading config without tracebacks and reporting errors."""

from __future__ import annotations

import asyncio
import errno
import json
import math
import os
import sqlite3
import ssl
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from beacons.errors import BeaconsError
from beacons.fleet import load_fleet
from hub.app import RunningHub, serve_until_stopped
from hub.backup import refuse_lost_database
from hub.config import ConfigError, HubConfig, load_config
from hub.errors import HubError
from hub.services import Services, build_services
from hub.storage import storage_failure
from sync.broker_config import read_password_file
from sync.mqtt_client import tls_context

F = TypeVar("F", bound=Callable[..., Any])

config_option = click.option(
    "--config", "config_path", type=click.Path(path_type=Path), default="hub.toml",
    envvar="RETAIL_HUB_CONFIG", show_default=True, help="The hub's TOML config file.",
)


class FiniteRange(click.FloatRange):
    """A float option in a range that also refuses ``nan`` and ``inf``: click's own range lets
    NaN through (it compares false with both ends), which then decides nothing silently."""

    name = "finite float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


C = TypeVar("C")

#: Where a command's loaded config keeps the hub's own folders (click's per-invocation meta).
_OWN_FOLDERS = "retail_hub.own_folders"


def load(config_path: Path, read: Callable[[Path], C] = load_config) -> C:
    """The config (or what ``read`` takes from the file), or exit 2 with its problems listed.
    A hub config's folders are remembered for :func:`reports_errors`, which tells a refusal of
    the hub's own files from one of a path the user gave."""
    try:
        loaded = read(config_path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    context = click.get_current_context(silent=True)
    if isinstance(loaded, HubConfig) and context is not None:
        context.meta[_OWN_FOLDERS] = (loaded.store.database.parent, loaded.store.images_dir)
    return loaded


def _user_path_refused(exc: OSError) -> str | None:
    """The sentence "cannot read FILE: permission denied" (or write) when ``exc`` refused a path
    that is not one of the hub's own files, else None. Why: a dataset file or an --out folder
    the user may not use got the advice to chown /var/lib/retail-hub, which is about the hub's
    files (those under the folders of the config the command loaded; a command that loaded
    none has none)."""
    if exc.errno not in (errno.EACCES, errno.EPERM) or not exc.filename:
        return None
    named = os.fsdecode(exc.filename)
    path = os.path.abspath(named)
    context = click.get_current_context(silent=True)
    own = context.meta.get(_OWN_FOLDERS, ()) if context is not None else ()
    if any(Path(path).is_relative_to(os.path.abspath(folder)) for folder in own):
        return None
    if os.path.exists(path):
        verb = "write" if os.access(path, os.R_OK) else "read"
    else:  # to be made, in a folder that may be searched: writing it was refused
        verb = "write" if os.access(os.path.dirname(path), os.X_OK) else "read or write"
    return f"cannot {verb} {named}: permission denied"


def reports_errors(fn: F) -> F:
    """Turn a :class:`HubError` into its message on stderr and exit status 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HubError as exc:
            click.echo(f"error: {exc.message}", err=True)
            if exc.details:
                click.echo(json.dumps(exc.details, indent=2, ensure_ascii=False), err=True)
            sys.exit(1)
        except ValueError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except (OSError, sqlite3.Error) as exc:  # the disk, not the command: say which
            said = _user_path_refused(exc) if isinstance(exc, OSError) else None
            if said is None:
                failure = storage_failure(exc)
                if failure is None:
                    raise
                said = failure.message
            click.echo(f"error: {said}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@contextmanager
def open_services(config_path: Path) -> Iterator[Services]:
    """Services for a one-off command (no background work), closed afterwards; the files the
    config names are read first, as by ``run``, so a missing one is named, not a traceback."""
    config = load(config_path)
    check_files(config, config_path)
    refuse_lost_database(config.store.database)
    services = build_services(config)
    try:
        yield services
    finally:
        services.close()


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _broker_file_problems(
    config_path: Path, prefix: str, password_file: Path | None, ca_file: Path | None
) -> list[str]:
    """What is wrong with a broker link's password and CA files (the shop link's ``mqtt.``
    and the relay nodes' ``beacons.relay_``): each read as the link will read it."""
    problems = []
    if password_file is not None:
        try:
            read_password_file(password_file)
        except OSError as exc:
            problems.append(
                f"{config_path}: {prefix}password_file: {exc.filename}: {exc.strerror}"
            )
        except UnicodeDecodeError:
            problems.append(f"{config_path}: {prefix}password_file: {password_file}: not text")
    if ca_file is not None and not ca_file.is_file():
        problems.append(f"{config_path}: {prefix}tls_ca_file: {ca_file}: no such file")
    elif ca_file is not None:
        try:
            tls_context(ca_file)
        except ssl.SSLError as exc:
            problems.append(
                f"{config_path}: {prefix}tls_ca_file: {ca_file}: not a PEM CA certificate "
                f"({exc.reason or exc})"
            )
        except OSError as exc:
            problems.append(f"{config_path}: {prefix}tls_ca_file: {ca_file}: {exc.strerror}")
    return problems


def check_files(config: HubConfig, config_path: Path) -> None:
    """Read the files the config names (staff token, broker password, fleet) now and exit with
    status 2 and every problem found, so ``config check`` reports them and a bad file stops
    start-up cleanly instead of as a traceback."""
    problems = []
    try:
        config.web.load_staff_token()
    except (OSError, ValueError) as exc:
        problems.append(f"{config_path}: staff token: {exc}")
    if config.mqtt.enabled:
        problems += _broker_file_problems(
            config_path, "mqtt.", config.mqtt.password_file, config.mqtt.tls_ca_file
        )
    if config.beacons.enabled and config.beacons.source == "mqtt":
        problems += _broker_file_problems(
            config_path,
            "beacons.relay_",
            config.beacons.relay_password_file,
            config.beacons.relay_tls_ca_file,
        )
    # The hub reads the fleet file only with beacons on; the example names one with them off.
    if config.beacons.enabled and config.beacons.fleet_file is not None:
        try:
            fleet = load_fleet(config.beacons.fleet_file)
        except BeaconsError as exc:
            problems.append(f"{config_path}: beacons.fleet_file: {exc}")
        else:
            if fleet.store is not None and fleet.store != config.store.id:
                # relay nodes flashed from it publish under another store's topics
                problems.append(
                    f"{config_path}: beacons.fleet_file: {config.beacons.fleet_file} is for store "
                    f"{fleet.store!r} but this hub is store.id = {config.store.id!r}"
                )
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        sys.exit(2)


def serve(config: HubConfig, started: Callable[[RunningHub], None]) -> None:
    """Run the hub until Ctrl-C; start-up failures end with a message, not a traceback."""
    try:
        asyncio.run(serve_until_stopped(config, started))
    except HubError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    except (OSError, sqlite3.Error) as exc:
        failure = storage_failure(exc, config.store.database)
        if failure is not None:
            why = f"{failure.message} ({config.store.database})"
        elif isinstance(exc, OSError):
            why = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
        else:
            raise
        click.echo(f"error: cannot start the hub: {why}", err=True)
        sys.exit(1)
