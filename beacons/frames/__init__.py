"""Beacon frame parsing and building from the manufacturer and service data bleak reports.

Pure functions and frozen dataclasses: no radio, no clock. ``parse_frames`` finds every beacon
frame in one advertisement; each frame class builds its own bytes back."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from beacons.errors import FrameError
from beacons.frames.altbeacon import AltBeacon, is_altbeacon, parse_altbeacon
from beacons.frames.eddystone import (
    EDDYSTONE_UUID,
    EddystoneEID,
    EddystoneETLM,
    EddystoneTLM,
    EddystoneUID,
    EddystoneURL,
    parse_eddystone,
)
from beacons.frames.ibeacon import IBeacon, is_ibeacon, parse_ibeacon

Frame = (
    IBeacon | AltBeacon | EddystoneUID | EddystoneURL | EddystoneTLM | EddystoneETLM | EddystoneEID
)

__all__ = [
    "EDDYSTONE_UUID",
    "AltBeacon",
    "EddystoneEID",
    "EddystoneETLM",
    "EddystoneTLM",
    "EddystoneUID",
    "EddystoneURL",
    "Frame",
    "IBeacon",
    "advertising_data",
    "identity",
    "parse_frames",
]

_log = logging.getLogger(__name__)


def identity(frame: Frame) -> tuple[object, ...] | None:
    """What names a beacon in its frame: the ids without the power byte, so a beacon calibrated
    again to another 1 m power (or an AltBeacon with another reserved byte) is still the beacon
    the fleet declares. None for telemetry and ephemeral ids, which name no beacon themselves."""
    if isinstance(frame, IBeacon):
        return ("ibeacon", frame.uuid, frame.major, frame.minor)
    if isinstance(frame, AltBeacon):
        return ("altbeacon", frame.company_id, frame.beacon_id)
    if isinstance(frame, EddystoneUID):
        return ("eddystone-uid", frame.namespace, frame.instance)
    if isinstance(frame, EddystoneURL):
        return ("eddystone-url", frame.url)
    return None


def parse_frames(
    manufacturer_data: Mapping[int, bytes],
    service_data: Mapping[str, bytes],
    *,
    strict: bool = False,
) -> list[Frame]:
    """Every beacon frame in one advertisement. Data that is not a beacon at all (earbuds, other
    Apple payloads) is ignored; data that claims to be a beacon but is malformed raises FrameError
    when ``strict``, and is otherwise skipped with a debug log, so one broken beacon cannot stop a
    scanner."""
    frames: list[Frame] = []
    for company_id, data in manufacturer_data.items():
        try:
            if is_ibeacon(company_id, data):
                frames.append(parse_ibeacon(data))
            elif is_altbeacon(data):
                frames.append(parse_altbeacon(company_id, data))
        except FrameError as exc:
            if strict:
                raise
            _log.debug("skipping malformed frame from company 0x%04x: %s", company_id, exc)
    eddystone = service_data.get(EDDYSTONE_UUID)
    if eddystone is not None:
        try:
            frames.append(parse_eddystone(eddystone))
        except FrameError as exc:
            if strict:
                raise
            _log.debug("skipping malformed Eddystone frame: %s", exc)
    return frames


def advertising_data(frame: Frame) -> tuple[dict[int, bytes], dict[str, bytes]]:
    """The (manufacturer_data, service_data) pair bleak would report for ``frame``: what the
    simulator puts on the air and what the fleet renderer flashes."""
    if isinstance(frame, IBeacon | AltBeacon):
        company_id, data = frame.manufacturer_data()
        return {company_id: data}, {}
    uuid, data = frame.service_data()
    return {}, {uuid: data}
