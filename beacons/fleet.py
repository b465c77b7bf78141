"""The store's beacon fleet as declared in ``firmware_configs/*.yaml``: the beacons (kind, ids,
power, interval, zone, position) and the scanner nodes, schema-checked, and rendered into the
settings each device is flashed with.

The same declaration tells fleet health which advertisements are the store's own beacons."""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

import yaml
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator

from beacons.errors import FleetError, FrameError
from beacons.frames import (
    AltBeacon,
    EddystoneEID,
    EddystoneETLM,
    EddystoneTLM,
    EddystoneUID,
    EddystoneURL,
    Frame,
    IBeacon,
    identity,
)
from beacons.frames.eddystone import EDDYSTONE_UUID
from untrusted.files import read_at_most

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
EDDYSTONE_0M_OFFSET_DB = 41  # Eddystone ranging data = 1 m power + 41 dB (spec)
FLAGS_AD = bytes([0x02, 0x01, 0x06])  # LE general discoverable, BR/EDR not supported


class _Strict(BaseModel):
    # YAML reads .inf and .nan as numbers: no position or power is infinite
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


#: A whole number as written: pydantic would otherwise take `true` as 1, 2.0 as 2 and "7" as 7,
#: and a beacon flashed with a value nobody wrote.
Int = Annotated[int, Strict()]
#: A number as written (a whole one too), for the same reason: not `true`, not "1.5".
Float = Annotated[float, Strict()]
#: Yes or no as YAML writes it (true, false, yes, no unquoted): not 1, not the text "no",
#: which pydantic would take as false.
Bool = Annotated[bool, Strict()]


class Position(_Strict):
    """Where a device is mounted, in metres in the store's floor plan."""

    x: Float = Field(description="Along the street front, from the left wall.")
    y: Float = Field(description="Into the shop, from the front wall.")
    z: Float = Field(default=2.0, ge=0, le=20, description="Height above the floor.")


Hex = Annotated[str, Field(pattern=r"^[0-9a-fA-F]*$")]


#: The ids each kind of beacon is identified by.
_IDS = {
    "ibeacon": ("uuid", "major", "minor"),
    "altbeacon": ("uuid", "major", "minor", "company_id"),
    "eddystone-uid": ("namespace", "instance"),
    "eddystone-url": ("url",),
    "eddystone-eid": ("identity_key", "rotation_exponent"),
}


class BeaconSpec(_Strict):
    """One store beacon. Which id fields are required depends on ``kind``."""

    id: str = Field(pattern=NAME, description="The store's name for this beacon.")
    kind: Literal["ibeacon", "altbeacon", "eddystone-uid", "eddystone-url", "eddystone-eid"] = (
        Field(description="Frame format it advertises.")
    )
    uuid: UUID | None = Field(default=None, description="iBeacon proximity UUID / AltBeacon id1.")
    major: Int | None = Field(
        default=None, ge=0, le=65535, description="iBeacon major / AltBeacon id2."
    )
    minor: Int | None = Field(
        default=None, ge=0, le=65535, description="iBeacon minor / AltBeacon id3."
    )
    company_id: Int = Field(
        default=0x0118,
        ge=0,
        le=65535,
        description="AltBeacon manufacturer company id (default: the spec's example, 0x0118).",
    )
    namespace: Hex | None = Field(default=None, description="Eddystone-UID namespace, 20 hex.")
    instance: Hex | None = Field(default=None, description="Eddystone-UID instance, 12 hex.")
    url: str | None = Field(
        default=None, description="Eddystone-URL target (at most 17 bytes once compressed)."
    )
    identity_key: Hex | None = Field(
        default=None, description="Eddystone-EID identity key, 32 hex."
    )
    rotation_exponent: Int = Field(
        default=10, ge=0, le=15, description="Eddystone-EID: a new id every 2^k seconds."
    )
    measured_power: Int = Field(
        default=-59, ge=-100, le=0, description="Calibrated RSSI at 1 m, dBm (measure it)."
    )
    radio_tx_power: Int = Field(default=0, ge=-40, le=10, description="Radio output setting, dBm.")
    interval_ms: Int = Field(
        default=1000, ge=20, le=10240, description="Advertising interval (BLE allows 20-10240)."
    )
    tlm_every: Int = Field(
        default=10,
        ge=0,
        le=100,
        description="Eddystone kinds: send a TLM frame every n-th advertisement (0: never). "
        "Without TLM, battery health is unknown.",
    )
    zone: str | None = Field(default=None, pattern=NAME, description="Zone it is placed in.")
    position: Position | None = Field(default=None, description="Mounting position.")

    @model_validator(mode="after")
    def _ids_for_kind(self) -> BeaconSpec:
        need = _IDS[self.kind]
        missing = [name for name in need if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind} beacon needs {', '.join(missing)}")
        # An id of another kind is a mistake in the file (a copied block, a wrong kind), and
        # the beacon would be flashed and recognised without it.
        foreign = sorted(
            ({n for ids in _IDS.values() for n in ids} - set(need)) & self.model_fields_set
        )
        if foreign:
            raise ValueError(f"a {self.kind} beacon has no {', '.join(foreign)}")
        lengths = {"namespace": 20, "instance": 12, "identity_key": 32}
        for name, length in lengths.items():
            value = getattr(self, name)
            if value is not None and len(value) != length:
                raise ValueError(f"{name} must be {length} hex digits, got {len(value)}")
        ranging = self.tx_power_0m
        if self.kind.startswith("eddystone") and not -100 <= ranging <= 20:
            raise ValueError(
                f"measured_power {self.measured_power} dBm would advertise Eddystone ranging "
                f"data of {ranging} dBm (1 m power + {EDDYSTONE_0M_OFFSET_DB} dB), outside the "
                "spec's -100 to +20 dBm; measure the 1 m power again (it is usually -50 to -80)"
            )
        try:
            self.identity_frame()
        except FrameError as exc:
            raise ValueError(str(exc)) from exc
        return self

    @property
    def tx_power_0m(self) -> int:
        """Eddystone ranging data: the 1 m power plus 41 dB."""
        return self.measured_power + EDDYSTONE_0M_OFFSET_DB

    def identity_frame(self, eid: bytes = bytes(8)) -> Frame:
        """The frame that identifies this beacon (for EID: with the given ephemeral id)."""
        if self.kind == "ibeacon":
            assert self.uuid and self.major is not None and self.minor is not None
            return IBeacon(self.uuid, self.major, self.minor, self.measured_power)
        if self.kind == "altbeacon":
            assert self.uuid and self.major is not None and self.minor is not None
            beacon_id = self.uuid.bytes + struct.pack(">HH", self.major, self.minor)
            return AltBeacon(self.company_id, beacon_id, self.measured_power)
        if self.kind == "eddystone-uid":
            assert self.namespace and self.instance
            return EddystoneUID(
                self.tx_power_0m, bytes.fromhex(self.namespace), bytes.fromhex(self.instance)
            )
        if self.kind == "eddystone-url":
            assert self.url
            return EddystoneURL(self.tx_power_0m, self.url)
        return EddystoneEID(self.tx_power_0m, eid)


class ScannerNodeSpec(_Strict):
    """A scanner: the hub's own adapter, or a relay node that publishes what it hears to the
    store's local MQTT broker."""

    name: str = Field(pattern=NAME, description="Scanner name (as in traces and hub.toml).")
    kind: Literal["hub-adapter", "esp32-relay"] = Field(description="What kind of device.")
    zone: str | None = Field(default=None, pattern=NAME, description="Zone it covers.")
    position: Position | None = Field(default=None, description="Mounting position.")
    adapter: str | None = Field(
        default=None, pattern=r"^hci[0-9]+$", description="hub-adapter: BlueZ adapter (hciN)."
    )
    active_scan: Bool = Field(
        default=False,
        description="Send scan requests. Passive is enough for tokens and beacons and does not "
        "make phones answer.",
    )
    scan_interval_ms: Int = Field(default=100, ge=3, le=10240, description="Scan interval.")
    scan_window_ms: Int = Field(
        default=100, ge=3, le=10240, description="Scan window (<= interval)."
    )
    batch_ms: Int = Field(
        default=200,
        ge=10,
        le=5000,
        description="esp32-relay: how long the node collects advertisements before publishing.",
    )

    @model_validator(mode="after")
    def _window_fits(self) -> ScannerNodeSpec:
        if self.scan_window_ms > self.scan_interval_ms:
            raise ValueError("scan_window_ms cannot exceed scan_interval_ms")
        if self.kind == "esp32-relay" and self.adapter is not None:
            raise ValueError("adapter applies only to a hub-adapter scanner")
        return self


class Fleet(_Strict):
    """Everything declared in one fleet file."""

    store: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        description="Store id these devices belong to.",
    )
    beacons: list[BeaconSpec] = Field(default_factory=list, description="The store's beacons.")
    scanners: list[ScannerNodeSpec] = Field(default_factory=list, description="Scanner nodes.")

    @model_validator(mode="after")
    def _unique(self) -> Fleet:
        for what, names in (
            ("beacon id", [b.id for b in self.beacons]),
            ("scanner name", [s.name for s in self.scanners]),
        ):
            dupes = sorted(n for n, count in Counter(names).items() if count > 1)
            if dupes:
                raise ValueError(f"duplicate {what}s: {', '.join(dupes)}")
        idents = [
            b.identity_key.lower() if b.identity_key else identity(b.identity_frame())
            for b in self.beacons
        ]
        if len(idents) != len(set(idents)):
            raise ValueError("two beacons advertise the same identity; each needs its own ids")
        return self


#: A store declares tens of devices; a fleet file of this size is something else.
MAX_FLEET_BYTES = 1024 * 1024


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping: plain YAML keeps the last,
    so a second ``beacons:`` would silently drop every beacon declared above it."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool):
                continue  # an unhashable key is the base loader's to refuse
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_fleet(path: Path) -> Fleet:
    """Read and check a fleet file. Raises FleetError listing every problem with its location."""
    try:
        data = read_at_most(path, MAX_FLEET_BYTES)
        if data is None:
            raise FleetError(
                f"{path}: larger than {MAX_FLEET_BYTES >> 10} KiB; is it a fleet file?"
            )
        text = data.decode("utf-8")
    except OSError as exc:
        raise FleetError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise FleetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        doc = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise FleetError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    except RecursionError as exc:  # "[[[[..." some thousands deep; no fleet nests past 4
        raise FleetError(f"{path}: nested too deeply: not a fleet file") from exc
    if not isinstance(doc, dict):
        raise FleetError(f"{path}: expected a mapping with 'beacons' and 'scanners'")
    try:
        return Fleet.model_validate(doc)
    except ValidationError as exc:
        lines = [f"  {_where(doc, err['loc'])}: {_message(err)}" for err in exc.errors()]
        raise FleetError(f"{path}: {len(lines)} problem(s):\n" + "\n".join(lines)) from exc


def zone_problems(fleet: Fleet) -> tuple[list[str], list[str]]:
    """(errors, warnings) from comparing the beacons' zones with the zones scanners cover (a
    scanner's zone defaults to its name, as in presence). The scanners' zones are the store's
    zones, the ones presence reports: a beacon in any other zone is a typo or an undeclared
    scanner, and no scanner placed to hear it means fleet health may call it missing while it
    is on the air, so that is an error. A scanner with no beacon in its zone is a warning:
    presence needs no beacon, but no store beacon there shows that the scanner hears.

    A file that declares no scanners (they are the hub's own, in its config) is not checked:
    there is nothing here to compare with."""
    if not fleet.scanners:
        return [], []
    covered = {scanner.zone or scanner.name for scanner in fleet.scanners}
    placed = {beacon.zone for beacon in fleet.beacons if beacon.zone is not None}
    errors = [
        f"beacons.{i} ({beacon.id}).zone: no scanner covers zone {beacon.zone!r} (scanners "
        f"cover: {_zone_list(covered)}), so fleet health may report the beacon missing while "
        f"it is on the air; correct its zone or declare the scanner of {beacon.zone!r}"
        for i, beacon in enumerate(fleet.beacons)
        if beacon.zone is not None and beacon.zone not in covered
    ]
    warnings = [
        f"scanners.{i} ({scanner.name}).zone: no beacon is declared in zone "
        f"{scanner.zone or scanner.name!r} (beacons are in: {_zone_list(placed)}); presence "
        "works without one, but no store beacon there shows that this scanner hears"
        for i, scanner in enumerate(fleet.scanners)
        if (scanner.zone or scanner.name) not in placed
    ]
    return errors, warnings


def _zone_list(zones: set[str]) -> str:
    return ", ".join(sorted(zones)) or "none"


def _where(doc: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    """A problem's place as a person finds it in the file: the list entry by its id or name
    (``beacons.2 (window-url).url``), not only by its position counted from 0."""
    if not loc:
        return "(top)"
    parts = [str(p) for p in loc]
    if len(loc) >= 2 and loc[0] in ("beacons", "scanners") and isinstance(loc[1], int):
        entries = doc.get(str(loc[0]))
        entry = entries[loc[1]] if isinstance(entries, list) and loc[1] < len(entries) else None
        key = "id" if loc[0] == "beacons" else "name"
        name = entry.get(key) if isinstance(entry, dict) else None
        if isinstance(name, str | int):
            parts[1] = f"{loc[1]} ({name})"
    return ".".join(parts)


def _message(err: Any) -> str:
    """Pydantic's message, with the usual YAML slip explained: hex ids and digits-only names
    written without quotes are read as numbers."""
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "string_type" and isinstance(err.get("input"), int | float):
        message += f" (YAML read {err['input']!r} as a number: put it in quotes)"
    if err["type"] in ("int_type", "float_type", "bool_type") and isinstance(err["input"], str):
        message += f" (YAML read {err['input']!r} as text: remove the quotes)"
    return message


def advertising_payload(frame: Frame) -> bytes:
    """The complete advertising data (flags + frame AD structures) a beacon transmits: what
    firmware that takes a raw payload is flashed with. Every frame fits the 31 bytes; the longest,
    Eddystone-URL with a 17-byte body, fills them exactly."""
    if isinstance(frame, IBeacon | AltBeacon):
        company_id, data = frame.manufacturer_data()
        body = struct.pack("<H", company_id) + data
        return FLAGS_AD + bytes([len(body) + 1, 0xFF]) + body
    _, data = frame.service_data()
    service = bytes.fromhex("aafe")  # 0xFEAA little-endian
    return FLAGS_AD + bytes([3, 0x03]) + service + bytes([len(data) + 3, 0x16]) + service + data


def render_beacon(spec: BeaconSpec) -> dict[str, object]:
    """Per-beacon settings to flash: radio settings and the exact payloads in rotation."""
    identity = spec.identity_frame()
    frames: list[dict[str, object]] = [_frame_entry(identity)]
    if spec.kind.startswith("eddystone") and spec.tlm_every:
        frames.append({**_telemetry_entry(spec), "every": spec.tlm_every})
    out: dict[str, object] = {
        "id": spec.id,
        "kind": spec.kind,
        "advertising_interval_ms": spec.interval_ms,
        "radio_tx_power_dbm": spec.radio_tx_power,
        "connectable": False,
        "frames": frames,
    }
    if spec.kind == "eddystone-eid":
        out["eid"] = {
            "identity_key": spec.identity_key,
            "rotation_exponent": spec.rotation_exponent,
            "time_counter": "Unix seconds (fleet health recognises the EID from the hub's clock)",
        }
    return out


FRAME_NAMES: dict[type, str] = {
    IBeacon: "ibeacon",
    AltBeacon: "altbeacon",
    EddystoneUID: "eddystone-uid",
    EddystoneURL: "eddystone-url",
    EddystoneTLM: "eddystone-tlm",
    EddystoneETLM: "eddystone-etlm",
    EddystoneEID: "eddystone-eid",
}


def _telemetry_entry(spec: BeaconSpec) -> dict[str, object]:
    """The telemetry frame's template. An EID beacon may send it encrypted (ETLM), as EID
    firmware does by default so its battery and uptime do not give it away across ids: fleet
    health opens it with the declared identity key, and reads plain TLM from it as well."""
    if spec.kind != "eddystone-eid":
        return {
            **_frame_entry(EddystoneTLM(0, None, 0, 0)),
            "note": "battery, temperature and counters filled in by the firmware",
        }
    return {
        **_frame_entry(EddystoneETLM(bytes(12), bytes(2), bytes(2))),
        "note": "EID beacons may send their telemetry encrypted (Eddystone ETLM, TLM version 1): "
        "battery, temperature and counters sealed by the firmware with AES-EAX under the "
        "identity key, the nonce being the time counter with its low rotation_exponent bits "
        "cleared and a random 2-byte salt; fleet health decrypts it (plain TLM works too)",
    }


def _frame_entry(frame: Frame) -> dict[str, object]:
    entry: dict[str, object] = {
        "frame": FRAME_NAMES[type(frame)],
        "adv_data": advertising_payload(frame).hex(),
    }
    if isinstance(frame, IBeacon | AltBeacon):
        company_id, data = frame.manufacturer_data()
        entry["manufacturer_data"] = {str(company_id): data.hex()}
    else:
        entry["service_data"] = {EDDYSTONE_UUID: frame.service_data()[1].hex()}
    return entry


def render_scanner(spec: ScannerNodeSpec, *, store: str, topic_prefix: str) -> dict[str, object]:
    """Per-scanner settings: scan parameters and, for relay nodes, where to publish."""
    out: dict[str, object] = {
        "name": spec.name,
        "kind": spec.kind,
        "zone": spec.zone or spec.name,
        "scan": {
            "active": spec.active_scan,
            "interval_ms": spec.scan_interval_ms,
            "window_ms": spec.scan_window_ms,
            "duplicates": True,
        },
    }
    if spec.kind == "esp32-relay":
        out["mqtt"] = {
            "topic": relay_topic(topic_prefix, store, spec.name),
            "batch_ms": spec.batch_ms,
            "payload": "JSON Lines, one advertisement per line in the trace format",
        }
    else:
        out["adapter"] = spec.adapter or "hci0"
    return out


def relay_topic(prefix: str, store: str, scanner: str) -> str:
    """Local-broker topic a relay node publishes its advertisements on."""
    return f"{prefix}/v1/{store}/scanners/{scanner}/adv"
