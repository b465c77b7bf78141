"""The broker connection settings both ends share (the hub's ``[mqtt]`` section builds on it,
and so does the shop's), so the two configs cannot drift apart."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sync.mqtt_client import BrokerSettings

#: Bytes allowed beyond a payload for the topic, the fixed header and the properties.
PACKET_OVERHEAD = 64 * 1024


def max_packet_size(max_payload_bytes: int) -> int:
    """The largest MQTT packet to let through for ends whose limit is ``max_payload_bytes``:
    twice it, plus ``PACKET_OVERHEAD`` for topic, header and properties.

    The clients ask the broker for it (MQTT 5 Maximum Packet Size) and the generated broker
    configuration sets it (``sync/broker_setup.py``, mosquitto's ``max_packet_size``), from this
    one function: a broker constant of its own did not follow a raised ``max_payload_bytes``,
    and the broker dropped messages both ends would take. Why twice and not once: a message
    just over a receiver's limit still reaches it, to be dead-lettered with its reason, while
    one far larger is never read at all."""
    return 2 * max_payload_bytes + PACKET_OVERHEAD


def read_password_file(path: Path) -> str:
    """A broker password from its file: the first line, stripped (empty file: empty password).
    Why a file: the password stays out of the config file, which is shared and backed up, and
    is read only when connecting. Raises OSError (missing, unreadable) or UnicodeDecodeError."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0].strip() if lines else ""


class BrokerConnection(BaseModel):
    """How to reach and authenticate to the MQTT broker."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    host: str = Field(default="127.0.0.1", description="Broker host name or address.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker TCP port (8883 for TLS "
                      "by convention).")
    protocol: Literal["5", "3.1.1"] = Field(
        default="5",
        description="MQTT protocol version. Everything the sync protocol needs is in the payload, "
        "so 3.1.1 brokers work; 5 adds flow control from the broker's Receive Maximum.",
    )
    username: str | None = Field(default=None, description="Broker user name (for a store, its "
                                 "store id by convention).")
    password_file: Path | None = Field(
        default=None, description="File holding the broker password (first line). Relative to "
        "the config file."
    )
    tls_ca_file: Path | None = Field(
        default=None, description="CA certificate that signed the broker's certificate; setting "
        "it turns TLS on. Relative to the config file."
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive in seconds: "
                             "how soon a dead link is noticed (and the will published).")
    connect_timeout_s: float = Field(default=10.0, gt=0, le=120,
                                     description="Give up a connection attempt after this long.")
    max_inflight: int = Field(default=100, ge=1, le=65535, description="QoS 1 messages sent but "
                              "not yet acknowledged by the broker; lowered to the broker's "
                              "Receive Maximum on MQTT 5.")
    backoff_initial_s: float = Field(default=0.5, gt=0, le=60, description="First reconnect "
                                     "delay; doubles on each failure, with jitter.")
    backoff_max_s: float = Field(default=30.0, gt=0, le=3600,
                                 description="Longest reconnect delay.")

    def broker_settings(self, client_id: str, largest_payload: int | None = None) -> BrokerSettings:
        """Connection settings for ``client_id``, with the password read from its file.

        ``largest_payload`` is the receiver's ``max_payload_bytes``: the broker is asked to
        deliver nothing over :func:`max_packet_size` of it, so what the receiver would refuse
        anyway is at most read once and dead-lettered with its reason, and nothing larger is
        read at all (MQTT 5)."""
        password = None if self.password_file is None else read_password_file(self.password_file)
        packet = None if largest_payload is None else max_packet_size(largest_payload)
        return BrokerSettings(
            host=self.host,
            port=self.port,
            client_id=client_id,
            protocol=self.protocol,
            username=self.username,
            password=password,
            ca_file=self.tls_ca_file,
            keepalive_s=self.keepalive_s,
            connect_timeout_s=self.connect_timeout_s,
            max_inflight=self.max_inflight,
            backoff_initial_s=self.backoff_initial_s,
            backoff_max_s=max(self.backoff_max_s, self.backoff_initial_s),
            max_packet_size=packet,
        )
