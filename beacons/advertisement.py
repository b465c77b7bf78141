"""One received advertisement in the trace format of DESIGN.md, and its conversion to and from
bleak's own ``BLEDevice``/``AdvertisementData``.

Bytes stay lowercase hex strings and company ids stay decimal strings, exactly as in the trace:
the hot path (token lookup) only needs ``service_uuids``, so nothing is hex-decoded unless a
consumer (frames, fleet health) asks for bytes."""

from __future__ import annotations

import binascii
import re

import msgspec
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from beacons.errors import TraceError
from beacons.tokens import canonical

#: A 128-bit service UUID as bleak writes it (``canonical`` brings capitals and bare hex to it).
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Advertisement(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """What one scanner heard from one address at time ``t`` (Unix seconds)."""

    t: float
    scanner: str
    address: str
    # bleak reports whole dBm; recorders and simulators may write fractions, which are kept as
    # they are (an int stays an int, so traces written from bleak read back byte for byte).
    rssi: int | float
    tx_power: int | float | None = None
    local_name: str | None = None
    manufacturer_data: dict[str, str] = {}
    service_data: dict[str, str] = {}
    service_uuids: list[str] = []

    def manufacturer_bytes(self) -> dict[int, bytes]:
        """``manufacturer_data`` as bleak types it (company id -> bytes). Raises TraceError on a
        company id that is not a 16-bit decimal number or a value that is not hex."""
        out: dict[int, bytes] = {}
        for key, value in self.manufacturer_data.items():
            # ASCII digits only: "²" and "７６" are digits to str.isdigit, and "²" not to int()
            if not (key.isascii() and key.isdigit() and len(key) <= 5) or int(key) > 0xFFFF:
                raise TraceError(
                    f"manufacturer_data key {key!r} is not a company id (decimal 0-65535)"
                )
            out[int(key)] = _unhex("manufacturer_data", key, value)
        return out

    def service_bytes(self) -> dict[str, bytes]:
        """``service_data`` as bleak types it (service UUID -> bytes). Raises TraceError on a key
        that is not a 128-bit UUID (bleak's form, in capitals or as 32 bare hex digits) or a
        value that is not hex: no frame parser could ever match such a key."""
        out: dict[str, bytes] = {}
        for key, value in self.service_data.items():
            uuid = canonical(key)
            if not _UUID.fullmatch(uuid):
                raise TraceError(f"service_data key {key!r} is not a 128-bit service UUID")
            out[uuid] = _unhex("service_data", key, value)
        return out


def _unhex(field: str, key: str, value: str) -> bytes:
    try:
        return binascii.unhexlify(value)
    except (binascii.Error, ValueError) as exc:
        raise TraceError(f"{field}[{key!r}] is not hex bytes: {value!r}") from exc


def from_bleak(
    device: BLEDevice, data: AdvertisementData, *, scanner: str, t: float
) -> Advertisement:
    """Turn what bleak's detection callback receives into a trace record stamped ``t``."""
    return Advertisement(
        t=t,
        scanner=scanner,
        address=device.address,
        rssi=data.rssi,
        tx_power=data.tx_power,
        local_name=data.local_name,
        manufacturer_data={str(k): v.hex() for k, v in data.manufacturer_data.items()},
        service_data={k.lower(): v.hex() for k, v in data.service_data.items()},
        service_uuids=[u.lower() for u in data.service_uuids],
    )


def to_bleak(adv: Advertisement) -> tuple[BLEDevice, AdvertisementData]:
    """The bleak objects a real adapter would have produced for ``adv``: lets the simulated and
    replayed radios go through the exact callback the BlueZ scanner uses."""
    data = AdvertisementData(
        local_name=adv.local_name,
        manufacturer_data=adv.manufacturer_bytes(),
        service_data=adv.service_bytes(),
        service_uuids=list(adv.service_uuids),
        tx_power=None if adv.tx_power is None else round(adv.tx_power),
        rssi=round(adv.rssi),
        platform_data=(),
    )
    return BLEDevice(adv.address, adv.local_name, details=None), data
