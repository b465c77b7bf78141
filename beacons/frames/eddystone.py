"""Eddystone frames: service data under UUID 0xFEAA, frame type in the high nibble of byte 0.

UID (0x00), URL (0x10), TLM (0x20, unencrypted version 0) and EID (0x30). Multi-byte fields are
big-endian. UID/URL/EID carry Tx power at 0 m (the spec's "1 m reading + 41 dB"), not at 1 m."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from beacons.errors import FrameError
from beacons.frames._fields import check_bytes, check_int, int8
from beacons.frames.url_codec import decode_url, encode_url

EDDYSTONE_UUID = "0000feaa-0000-1000-8000-00805f9b34fb"
UID_TYPE, URL_TYPE, TLM_TYPE, EID_TYPE = 0x00, 0x10, 0x20, 0x30
TLM_NO_TEMPERATURE = -0x8000  # 0x8000 read as signed 8.8: "not supported"
_TLM = struct.Struct(">BBHhII")
_UID_LENGTHS = (18, 20)  # 20 with the two RFU bytes; 18 from older beacons that omit them


@dataclass(frozen=True, slots=True)
class EddystoneUID:
    """A fixed beacon id: 10-byte namespace + 6-byte instance."""

    tx_power_0m: int
    namespace: bytes
    instance: bytes

    def __post_init__(self) -> None:
        check_int("Eddystone-UID Tx power", self.tx_power_0m, -128, 127)
        check_bytes("Eddystone-UID namespace", self.namespace, 10)
        check_bytes("Eddystone-UID instance", self.instance, 6)

    def service_data(self) -> tuple[str, bytes]:
        """The (service UUID, bytes) pair bleak reports in ``service_data``; RFU bytes included."""
        payload = bytes([UID_TYPE, self.tx_power_0m & 0xFF]) + self.namespace + self.instance
        return EDDYSTONE_UUID, payload + b"\x00\x00"


@dataclass(frozen=True, slots=True)
class EddystoneURL:
    """A compressed URL (at most 17 encoded bytes after the scheme)."""

    tx_power_0m: int
    url: str

    def __post_init__(self) -> None:
        check_int("Eddystone-URL Tx power", self.tx_power_0m, -128, 127)
        encode_url(self.url)  # raises FrameError if the URL cannot be carried

    def service_data(self) -> tuple[str, bytes]:
        """The (service UUID, bytes) pair bleak reports in ``service_data``."""
        return EDDYSTONE_UUID, bytes([URL_TYPE, self.tx_power_0m & 0xFF]) + encode_url(self.url)


@dataclass(frozen=True, slots=True)
class EddystoneTLM:
    """Unencrypted telemetry. ``temperature_c`` is None when the beacon has no sensor (0x8000);
    ``uptime_tenths`` counts 0.1 s since power-on, as the spec's SEC_CNT does."""

    battery_mv: int
    temperature_c: float | None
    adv_count: int
    uptime_tenths: int

    def __post_init__(self) -> None:
        check_int("Eddystone-TLM battery", self.battery_mv, 0, 0xFFFF)
        check_int("Eddystone-TLM advertisement count", self.adv_count, 0, 0xFFFFFFFF)
        check_int("Eddystone-TLM uptime", self.uptime_tenths, 0, 0xFFFFFFFF)
        if self.temperature_c is not None:
            temperature = self.temperature_c
            raw = temperature * 256 if isinstance(temperature, int | float) else math.nan
            if isinstance(temperature, bool) or not math.isfinite(raw) or raw != int(raw) or not (
                -0x7FFF <= raw <= 0x7FFF
            ):
                raise FrameError(
                    "Eddystone-TLM temperature must be a multiple of 1/256 degC between "
                    f"-127.99 and 127.99, got {self.temperature_c!r}"
                )

    @property
    def uptime_s(self) -> float:
        """Seconds since the beacon powered on or rebooted."""
        return self.uptime_tenths / 10

    def service_data(self) -> tuple[str, bytes]:
        """The (service UUID, bytes) pair bleak reports in ``service_data``."""
        raw_temp = (
            TLM_NO_TEMPERATURE if self.temperature_c is None else int(self.temperature_c * 256)
        )
        payload = _TLM.pack(
            TLM_TYPE, 0, self.battery_mv, raw_temp, self.adv_count, self.uptime_tenths
        )
        return EDDYSTONE_UUID, payload


@dataclass(frozen=True, slots=True)
class EddystoneEID:
    """An 8-byte ephemeral id; only its owner's resolver can map it to a beacon."""

    tx_power_0m: int
    eid: bytes

    def __post_init__(self) -> None:
        check_int("Eddystone-EID Tx power", self.tx_power_0m, -128, 127)
        check_bytes("Eddystone-EID ephemeral id", self.eid, 8)

    def service_data(self) -> tuple[str, bytes]:
        """The (service UUID, bytes) pair bleak reports in ``service_data``."""
        return EDDYSTONE_UUID, bytes([EID_TYPE, self.tx_power_0m & 0xFF]) + self.eid


EddystoneFrame = EddystoneUID | EddystoneURL | EddystoneTLM | EddystoneEID


def parse_eddystone(data: bytes) -> EddystoneFrame:
    """Parse the service data bleak gives under 0xFEAA. Raises FrameError on unknown frame types,
    wrong lengths, encrypted telemetry and reserved URL codes."""
    if not data:
        raise FrameError("Eddystone service data is empty")
    frame_type = data[0] & 0xF0
    if data[0] & 0x0F:
        raise FrameError(
            f"Eddystone frame type 0x{data[0]:02x} sets the reserved low bits (must be 0000)"
        )
    if frame_type == UID_TYPE:
        if len(data) not in _UID_LENGTHS:
            raise FrameError(f"Eddystone-UID must be 18 or 20 bytes, got {len(data)}")
        return EddystoneUID(int8(data[1]), bytes(data[2:12]), bytes(data[12:18]))
    if frame_type == URL_TYPE:
        if len(data) < 3:
            raise FrameError(f"Eddystone-URL needs at least 3 bytes, got {len(data)}")
        return EddystoneURL(int8(data[1]), decode_url(bytes(data[2:])))
    if frame_type == TLM_TYPE:
        if len(data) > 1 and data[1] != 0:
            raise FrameError(
                f"Eddystone-TLM version {data[1]} is not plain telemetry (version 1 is "
                "encrypted; configure the beacon for unencrypted TLM to monitor it)"
            )
        if len(data) != _TLM.size:
            raise FrameError(f"Eddystone-TLM must be {_TLM.size} bytes, got {len(data)}")
        _, _, battery, raw_temp, adv_count, uptime = _TLM.unpack(data)
        temperature = None if raw_temp == TLM_NO_TEMPERATURE else raw_temp / 256
        return EddystoneTLM(battery, temperature, adv_count, uptime)
    if frame_type == EID_TYPE:
        if len(data) != 10:
            raise FrameError(f"Eddystone-EID must be 10 bytes, got {len(data)}")
        return EddystoneEID(int8(data[1]), bytes(data[2:10]))
    raise FrameError(f"unknown Eddystone frame type 0x{frame_type:02x}")
