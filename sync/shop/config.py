"""The shop service's configuration (``shop.toml``): strict models, readable errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sync.broker_config import BrokerConnection


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
    max_payload_bytes: int = Field(default=512 * 1024, ge=1024, le=64 * 1024 * 1024,
                                   description="Larger messages are dead-lettered unread.")
    batch: int = Field(default=500, ge=1, le=10_000,
                       description="Messages applied per database transaction at most.")


class ShopConfig(_Strict):
    """The whole shop service configuration."""

    database: Path = Field(default=Path("var/shop.db"), description="SQLite file of the shop. "
                           "Relative to the config file.")
    http: ShopHttpConfig = Field(default_factory=ShopHttpConfig, description="The HTTP API.")
    mqtt: ShopBrokerConfig = Field(default_factory=ShopBrokerConfig, description="The broker.")
    sync: ShopSyncConfig = Field(default_factory=ShopSyncConfig, description="Event handling.")


class ShopConfigError(Exception):
    """``shop.toml`` cannot be used; the message lists every problem with its key."""


def load_shop_config(path: Path) -> ShopConfig:
    """Read and validate ``path``; relative file paths are resolved against its folder."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ShopConfigError(f"{path}: file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ShopConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        config = ShopConfig.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join(
            f"  {path}: {'.'.join(map(str, e['loc']))}: "
            + ("unknown setting" if e["type"] == "extra_forbidden" else e["msg"])
            for e in exc.errors())
        raise ShopConfigError(f"{path} has {exc.error_count()} problem(s):\n{problems}") from None
    base = path.parent.resolve()
    config.database = base / config.database
    for name in ("password_file", "tls_ca_file"):
        value = getattr(config.mqtt, name)
        if value is not None:
            setattr(config.mqtt, name, base / value)
    return config
