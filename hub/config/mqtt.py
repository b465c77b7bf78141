"""The link to the online shop over MQTT (used by ``sync``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from hub.config.base import StrictModel


class MqttConfig(StrictModel):
    """Broker connection. Disabled by default so a store without a broker still runs; the outbox
    keeps everything until a broker appears."""

    enabled: bool = Field(default=False, description="Connect to the broker and sync with the shop.")
    host: str = Field(default="127.0.0.1", description="Broker host name or address.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker TCP port.")
    topic_prefix: str = Field(
        default="retail",
        pattern=r"^[a-z0-9_-]+$",
        description="First segment of every topic; the protocol version follows it.",
    )
    username: str | None = Field(default=None, description="Broker user name (the store id by "
                                 "convention).")
    password_file: Path | None = Field(
        default=None, description="File holding the broker password. Relative to the config file."
    )
    tls_ca_file: Path | None = Field(
        default=None, description="CA certificate to verify the broker; setting it enables TLS."
    )
