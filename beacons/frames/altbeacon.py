"""AltBeacon v1.0: manufacturer data of any company, ``BE AC | 20-byte id | ref RSSI | reserved``.

The company id is the beacon maker's, so recognising an AltBeacon is by its beacon code and length,
whatever company id bleak reports it under."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from uuid import UUID

from beacons.errors import FrameError
from beacons.frames._fields import check_bytes, check_int

BEACON_CODE = b"\xbe\xac"
_BODY = struct.Struct(">20sbB")
ALTBEACON_LENGTH = len(BEACON_CODE) + _BODY.size


@dataclass(frozen=True, slots=True)
class AltBeacon:
    """One AltBeacon advertisement. ``reference_rssi`` is the average RSSI at 1 m in dBm."""

    company_id: int
    beacon_id: bytes
    reference_rssi: int
    mfg_reserved: int = 0

    def __post_init__(self) -> None:
        check_int("AltBeacon company id", self.company_id, 0, 0xFFFF)
        check_bytes("AltBeacon beacon id", self.beacon_id, 20)
        check_int("AltBeacon reference RSSI", self.reference_rssi, -128, 127)
        check_int("AltBeacon reserved byte", self.mfg_reserved, 0, 0xFF)

    @property
    def id1(self) -> UUID:
        """The organisational part (first 16 bytes), by the common 16/2/2 subdivision."""
        return UUID(bytes=self.beacon_id[:16])

    @property
    def id2(self) -> int:
        """The group part (bytes 16-17, big-endian), by the common 16/2/2 subdivision."""
        return int.from_bytes(self.beacon_id[16:18], "big")

    @property
    def id3(self) -> int:
        """The unit part (bytes 18-19, big-endian), by the common 16/2/2 subdivision."""
        return int.from_bytes(self.beacon_id[18:20], "big")

    def manufacturer_data(self) -> tuple[int, bytes]:
        """The (company id, bytes) pair bleak reports in ``manufacturer_data``."""
        body = _BODY.pack(self.beacon_id, self.reference_rssi, self.mfg_reserved)
        return self.company_id, BEACON_CODE + body


def is_altbeacon(data: bytes) -> bool:
    """Whether manufacturer data claims to be an AltBeacon (starts with the beacon code)."""
    return data[:2] == BEACON_CODE


def parse_altbeacon(company_id: int, data: bytes) -> AltBeacon:
    """Parse manufacturer data reported under ``company_id``. Raises FrameError if the bytes are
    not a complete AltBeacon payload."""
    if data[:2] != BEACON_CODE:
        raise FrameError(
            f"not an AltBeacon: data starts {data[:2].hex() or '(empty)'}, an AltBeacon starts beac"
        )
    if len(data) != ALTBEACON_LENGTH:
        raise FrameError(f"AltBeacon payload must be {ALTBEACON_LENGTH} bytes, got {len(data)}")
    beacon_id, reference_rssi, reserved = _BODY.unpack(data[2:])
    return AltBeacon(
        company_id=company_id,
        beacon_id=beacon_id,
        reference_rssi=reference_rssi,
        mfg_reserved=reserved,
    )
