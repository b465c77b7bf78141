"""The shop service's configuration (``shop.toml``): strict models, readable errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sync.broker_config import BrokerConnection
from sync.envelope import DEFAULT_MAX_PAYLOAD_BYTES, MAX_MAX_PAYLOAD_BYTES, MIN_MAX_PAYLOAD_BYTES
from untrusted.files import read_at_most
from untrusted.settings_types import validate_strictly, wrong_type

#: A shop.toml is a page of settings; anything larger is not one.
MAX_CONFIG_BYTES = 1024 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ShopBrokerConfig(BrokerConnection):
    """The broker, as the shop reaches it."""

    client_id: str = Field(default="shop-1", pattern=r"^[A-Za-z0-9_-]{1,64}$",
                           description="MQTT client id; unique per shop instance.")
    shared_group: str | None = Field(
        default="shop", pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="MQTT 5 shared-subscription group for store events, so several shop "
        "instances split the load; unset for a plain subscription (one instance, or MQTT 3.1.1 "
        "brokers without shared subscriptions).",
    )


class ShopHttpConfig(_Strict):
    """Where the mini-program's API listens."""

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8090, ge=0, le=65535, description="TCP port (0 picks a free one).")
    max_json_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024,
                                description="Largest JSON request body.")
    body_timeout_s: float = Field(
        default=15.0, gt=0, le=300,
        description="A request body must arrive whole within this many seconds, or it is refused "
        "(400 too_slow): a body that stops arriving would otherwise hold its request for ever.")


class ShopSyncConfig(_Strict):
    """How the shop consumes events and sends commands."""

    topic_prefix: str = Field(default="retail", pattern=r"^[a-z0-9_-]+$",
                              description="First topic segment; must match the stores'.")
    ack_interval_s: float = Field(default=0.05, gt=0, le=60,
                                  description="Acks to a store are sent at most this often.")
    resend_after_s: float = Field(default=10.0, gt=0, le=86_400,
                                  description="A command without a result is sent again after "
                                  "this long while its store is online.")
    max_payload_bytes: int = Field(
        default=DEFAULT_MAX_PAYLOAD_BYTES, ge=MIN_MAX_PAYLOAD_BYTES, le=MAX_MAX_PAYLOAD_BYTES,
        description="Larger messages are dead-lettered unread; on MQTT 5 the broker is asked to "
        "deliver none over twice this (plus 64 KiB). Also the largest command the shop sends: "
        "the API refuses one that would be larger (413), and a pending one found larger (the "
        "limit lowered since) is rejected and dead-lettered rather than sent. Use the stores' "
        "mqtt.max_payload_bytes: a store tells its own in its state, and where they differ "
        "the shop logs it and keeps a command over the store's pending, unsent, until they "
        "match.")
    batch: int = Field(default=500, ge=1, le=10_000,
                       description="Messages applied per database transaction at most.")


class ShopRetentionConfig(_Strict):
    """How long the shop keeps records nobody needs any more (``[retention]``). Stock movements,
    orders and their status history are business records and are never pruned; neither is a
    pending command nor anything the protocol still relies on (see ``sync/shop/retention.py``)."""

    reminders_days: float = Field(
        default=90.0, gt=0, le=3650,
        description="Arrival reminders of members (personal data) older than this are deleted; "
        "as long as the hub keeps its copy (hub [retention] reminders_days).")
    history_days: float = Field(
        default=30.0, ge=7, le=3650,
        description="Answered commands and the records of applied events are kept this long "
        "beyond restore_window_days: as long as the hub's outage allowance (hub [retention] "
        "sync_inbox_days), since a restored store may reach the shop only after an outage.")
    restore_window_days: float = Field(
        default=14.0, ge=0, le=3650,
        description="Age of the oldest hub backup a store may be restored from (the hub's nightly "
        "backup timer keeps 14). A restore from an older backup than this plus history_days may "
        "not resend every command the store lost.")
    dead_letters_days: float = Field(
        default=30.0, gt=0, le=3650,
        description="Refused incoming messages kept for diagnosis are deleted after this.")
    drift_days: float = Field(
        default=90.0, gt=0, le=3650,
        description="Drift records (stock differences, rewinds, history gaps) are deleted after "
        "this.")
    check_every_s: float = Field(
        default=3600.0, ge=1, le=86_400,
        description="How often old rows are looked for (on the service's clock).")
    batch_rows: int = Field(
        default=5000, ge=100, le=1_000_000,
        description="Rows deleted per write transaction at most, so a first run on a large "
        "database does not hold up the applying of events.")

    @property
    def kept_history_days(self) -> float:
        """Days answered commands and applied-event records are kept in all."""
        return self.history_days + self.restore_window_days


class ShopConfig(_Strict):
    """The whole shop service configuration."""

    database: Path = Field(default=Path("var/shop.db"), description="SQLite file of the shop. "
                           "Relative to the config file.")
    http: ShopHttpConfig = Field(default_factory=ShopHttpConfig, description="The HTTP API.")
    mqtt: ShopBrokerConfig = Field(default_factory=ShopBrokerConfig, description="The broker.")
    sync: ShopSyncConfig = Field(default_factory=ShopSyncConfig, description="Event handling.")
    retention: ShopRetentionConfig = Field(default_factory=ShopRetentionConfig,
                                           description="Deleting old rows.")


class ShopConfigError(Exception):
    """``shop.toml`` cannot be used; the message lists every problem with its key."""


def load_shop_config(path: Path) -> ShopConfig:
    """Read and validate ``path``; relative file paths are resolved against its folder. Values
    keep the type the file writes them in: ``port = "8883"`` is refused, not read as 8883."""
    try:
        raw = read_at_most(path, MAX_CONFIG_BYTES)
        if raw is None:
            raise ShopConfigError(f"{path}: file is larger than {MAX_CONFIG_BYTES // 1024} kB")
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except FileNotFoundError:
        raise ShopConfigError(f"{path}: file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ShopConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses per nested array or inline table: "x=[[[[..."
        raise ShopConfigError(f"{path}: not valid TOML: nested too deeply") from None
    except OSError as exc:  # a folder, a file the shop's user may not read
        raise ShopConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        config = validate_strictly(ShopConfig, data)
    except ValidationError as exc:
        problems = "\n".join(
            f"  {path}: {'.'.join(map(str, e['loc']))}: "
            + ("unknown setting" if e["type"] == "extra_forbidden"
               else wrong_type(e["type"], e.get("input")) or e["msg"])
            for e in exc.errors())
        raise ShopConfigError(f"{path} has {exc.error_count()} problem(s):\n{problems}") from None
    base = path.parent.resolve()
    config.database = base / config.database
    for name in ("password_file", "tls_ca_file"):
        value = getattr(config.mqtt, name)
        if value is not None:
            setattr(config.mqtt, name, base / value)
    return config
