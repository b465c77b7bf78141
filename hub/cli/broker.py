"""``retail-hub broker config``: a mosquitto setup in which each store sees only its own tree."""

from __future__ import annotations

from pathlib import Path

import click

from sync.broker_setup import BrokerPlan, BrokerSetupError, write_broker_config
from sync.envelope import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    MAX_MAX_PAYLOAD_BYTES,
    MIN_MAX_PAYLOAD_BYTES,
)
from untrusted.files import read_at_most

#: The largest --stores-file read: a chain of 20 000 stores is well under 1 MiB of ids.
MAX_STORES_FILE_BYTES = 1024 * 1024


@click.group()
def broker() -> None:
    """The MQTT broker between the stores and the online shop."""


@broker.command("config")
@click.option("--out", "folder", type=click.Path(path_type=Path, file_okay=False),
              required=True, help="Folder for mosquitto.conf, passwd, acl and credentials/.")
@click.option("--store", "stores", multiple=True, help="A store id (repeat for each store).")
@click.option("--stores-file", type=click.Path(path_type=Path, dir_okay=False),
              help="A file with one store id per line (added to --store).")
@click.option("--shop-user", "shop_users", multiple=True, default=["shop"], show_default=True,
              help="User name of the shop service (repeat for several).")
@click.option("--prefix", default="retail", show_default=True, help="Topic prefix.")
@click.option("--port", type=click.IntRange(1, 65535), default=8883, show_default=True)
@click.option("--bind", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--tls-cert", type=click.Path(path_type=Path, dir_okay=False),
              help="Server certificate (PEM).")
@click.option("--tls-key", type=click.Path(path_type=Path, dir_okay=False),
              help="Its private key (PEM).")
@click.option("--no-tls", is_flag=True, help="Listen without TLS (a test bench only).")
@click.option("--no-persistence", is_flag=True, help="Keep no broker state on disk.")
@click.option("--user", "run_as", help="System user mosquitto runs as (it must be able to "
              "read these files).")
@click.option("--max-payload-bytes",
              type=click.IntRange(MIN_MAX_PAYLOAD_BYTES, MAX_MAX_PAYLOAD_BYTES),
              default=DEFAULT_MAX_PAYLOAD_BYTES, show_default=True,
              help="The [mqtt] max_payload_bytes the hubs and the shop are configured with (one "
              "value for the chain); the broker's max_packet_size follows it.")
def config(folder: Path, stores: tuple[str, ...], stores_file: Path | None,
           shop_users: tuple[str, ...], prefix: str, port: int, bind: str,
           tls_cert: Path | None, tls_key: Path | None, no_tls: bool, no_persistence: bool,
           run_as: str | None, max_payload_bytes: int) -> None:
    """Write a mosquitto configuration with TLS, a password file and a per-store ACL."""
    names = list(stores)
    if stores_file is not None:
        names += _store_ids(stores_file)
    if not no_tls and (tls_cert is None or tls_key is None):
        raise click.UsageError("give --tls-cert and --tls-key (or --no-tls for a test bench)")
    plan = BrokerPlan(folder=folder, stores=names, shop_users=list(shop_users), prefix=prefix,
                      port=port, bind=bind, tls_cert=None if no_tls else tls_cert,
                      tls_key=None if no_tls else tls_key, persistence=not no_persistence,
                      run_as=run_as, max_payload_bytes=max_payload_bytes)
    try:
        files = write_broker_config(plan)
    except BrokerSetupError as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:  # a folder this user may not write in, a full disk
        raise click.ClickException(
            f"cannot write {exc.filename or folder}: {exc.strerror or exc}"
        ) from None
    click.echo(f"wrote {files.config}, {files.password_file} and {files.acl_file}")
    click.echo(f"credentials for {len(files.credentials)} users in "
               f"{files.config.parent / 'credentials'} (give each hub its own file as "
               "[mqtt] password_file)")


def _store_ids(path: Path) -> list[str]:
    """The store ids in ``path``, one a line ('#' starts a comment line), read with a bound: a
    wrong file (a device, a huge log) is refused, not read into memory."""
    try:
        data = read_at_most(path, MAX_STORES_FILE_BYTES)
        if data is None:
            raise click.BadParameter(
                f"{path} is larger than {MAX_STORES_FILE_BYTES >> 20} MiB: not a list of store "
                "ids", param_hint="--stores-file")
        text = data.decode("utf-8-sig")
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}",
                                 param_hint="--stores-file") from None
    except UnicodeDecodeError as exc:
        raise click.BadParameter(f"{path} is not UTF-8 text (byte {exc.start + 1}); save it as "
                                 "UTF-8", param_hint="--stores-file") from None
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.startswith("#")]
