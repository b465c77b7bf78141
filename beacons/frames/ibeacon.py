"""Apple iBeacon: manufacturer data under company 0x004C, ``02 15 | UUID | major | minor | power``.

Apple also puts other payloads (Continuity, AirDrop) under 0x004C; only the ``02 15`` prefix marks
an iBeacon, so anything else under that company id is "not an iBeacon" rather than an error."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from uuid import UUID

from beacons.errors import FrameError
from beacons.frames._fields import check_int

APPLE_COMPANY_ID = 0x004C
IBEACON_PREFIX = b"\x02\x15"
_BODY = struct.Struct(">16sHHb")
IBEACON_LENGTH = len(IBEACON_PREFIX) + _BODY.size


@dataclass(frozen=True, slots=True)
class IBeacon:
    """One iBeacon advertisement. ``measured_power`` is the calibrated RSSI at 1 m in dBm."""

    uuid: UUID
    major: int
    minor: int
    measured_power: int

    def __post_init__(self) -> None:
        if not isinstance(self.uuid, UUID):
            raise FrameError(f"iBeacon uuid must be a UUID, got {self.uuid!r}")
        check_int("iBeacon major", self.major, 0, 0xFFFF)
        check_int("iBeacon minor", self.minor, 0, 0xFFFF)
        check_int("iBeacon measured power", self.measured_power, -128, 127)

    def manufacturer_data(self) -> tuple[int, bytes]:
        """The (company id, bytes) pair bleak reports in ``manufacturer_data``."""
        body = _BODY.pack(self.uuid.bytes, self.major, self.minor, self.measured_power)
        return APPLE_COMPANY_ID, IBEACON_PREFIX + body


def is_ibeacon(company_id: int, data: bytes) -> bool:
    """Whether this manufacturer data claims to be an iBeacon (Apple id and ``02 15`` prefix)."""
    return company_id == APPLE_COMPANY_ID and data[:2] == IBEACON_PREFIX


def parse_ibeacon(data: bytes) -> IBeacon:
    """Parse the bytes bleak gives under company 0x004C. Raises FrameError if they are not a
    complete iBeacon payload."""
    if data[:2] != IBEACON_PREFIX:
        raise FrameError(
            f"not an iBeacon: Apple manufacturer data starts {data[:2].hex() or '(empty)'}, "
            "an iBeacon starts 0215"
        )
    if len(data) != IBEACON_LENGTH:
        raise FrameError(f"iBeacon payload must be {IBEACON_LENGTH} bytes, got {len(data)}")
    raw_uuid, major, minor, power = _BODY.unpack(data[2:])
    return IBeacon(uuid=UUID(bytes=raw_uuid), major=major, minor=minor, measured_power=power)
