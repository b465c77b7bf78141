"""Runs a scenario: draws the store and the crowd from the seed, puts every phone and store beacon
on the air through the radio model, and returns the trace (sorted by time) with its ground truth
and the members file needed to resolve the tokens."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from beacons.advertisement import Advertisement
from beacons.frames import EddystoneTLM, EddystoneUID, IBeacon, advertising_data
from beacons.members_file import MemberKeys
from beacons.simulator import people
from beacons.simulator.itinerary import Itinerary
from beacons.simulator.layout import Layout, single_scanner_layout, zoned_layout
from beacons.simulator.phones import Phone, draw_phone, quiet_periods
from beacons.simulator.radio import Radio
from beacons.simulator.scenario import Physics, Scenario
from beacons.tokens import WINDOW_S


@dataclass
class Simulation:
    """A simulated trace, its ground truth and the member keys that resolve its tokens."""

    scenario: Scenario
    layout: Layout
    physics: Physics
    advertisements: list[Advertisement]
    truth: list[dict[str, object]]
    members: MemberKeys


@dataclass
class _Emitter:
    phone: Phone
    path: Itinerary
    frames: tuple[tuple[dict[str, str], dict[str, str]], ...] = ()  # store beacon payloads


def simulate(scenario: Scenario) -> Simulation:
    """Run ``scenario`` and return the trace, truth and members."""
    rng = np.random.default_rng(scenario.seed)
    vary = scenario.vary
    layout = (
        zoned_layout(rng, vary=vary)
        if scenario.layout == "zones"
        else single_scanner_layout(rng, vary=vary, inner=scenario.layout == "pair")
    )
    physics = Physics.draw(rng, vary=vary)
    radio = Radio(layout, physics, rng)
    t0 = scenario.start + (float(rng.uniform(0, WINDOW_S)) if vary else 0.0)
    t_end = t0 + scenario.duration_s
    prefix = rng.bytes(8)
    keys: dict[str, bytes] = {}
    truth: list[dict[str, object]] = [
        {
            "t": t0,
            "member": None,
            "event": "scenario",
            "zone": None,
            "scenario": scenario.model_dump(),
            "until": t_end,
        }
    ]
    emitters: list[_Emitter] = []
    serial = iter(range(1, 1 << 30))

    def new_phone(key: bytes | None, phone_prefix: bytes = prefix) -> Phone:
        return draw_phone(
            rng,
            reference_dbm=physics.reference_dbm,
            power_sd_db=physics.phone_power_sd_db,
            key=key,
            prefix=phone_prefix,
            seed=next(serial),
        )

    # Visits end by t_end - 240 s so every departure (and the silence after it) is in the trace.
    last_start = max(t0, t_end - 900)
    for start in _arrivals(rng, scenario.visits_per_hour, t0, last_start):
        member = f"m{next(serial):05d}"
        keys[member] = rng.bytes(16)
        phone = new_phone(keys[member])
        for walk_start in _visit_starts(rng, scenario, start, last_start):
            walk = people.visit(rng, layout, member, walk_start)
            if walk.exited is None or walk.exited > t_end - 240:
                continue
            assert walk.entered is not None
            if rng.random() < scenario.quiet_at_entry_share:
                phone.quiet.append(
                    (
                        walk.entered - float(rng.uniform(5, 30)),
                        walk.entered + float(rng.uniform(10, 60)),
                    )
                )
            if rng.random() < scenario.background_share:
                phone.quiet += quiet_periods(
                    rng, walk.entered + 10, walk.exited - 5, count=int(rng.integers(1, 3))
                )
            truth += walk.truth
            emitters.append(_Emitter(phone, walk.path))

    for start in _arrivals(rng, scenario.passers_per_hour, t0, t_end - 120):
        member = f"m{next(serial):05d}"
        keys[member] = rng.bytes(16)
        linger = bool(rng.random() < scenario.window_shopper_share)
        walk = people.pass_by(rng, layout, member, start, linger=linger)
        phone = new_phone(keys[member])
        if rng.random() < 0.1:
            phone.quiet += quiet_periods(rng, walk.path.start, walk.path.end, count=1)
        truth += walk.truth
        emitters.append(_Emitter(phone, walk.path))

    for start in _arrivals(rng, scenario.non_members_per_hour, t0, t_end - 120):
        emitters.append(_non_member(rng, layout, new_phone, start))

    for index in range(scenario.store_beacons):
        emitters.append(_store_beacon(rng, layout, index, t0, t_end))

    adverts = _broadcast(rng, layout, radio, emitters, t_end)
    truth.sort(key=lambda r: float(r["t"]))  # type: ignore[arg-type]
    return Simulation(scenario, layout, physics, adverts, truth, MemberKeys(prefix, keys))


def _arrivals(rng: np.random.Generator, per_hour: float, t0: float, t1: float) -> list[float]:
    """Poisson arrival times in ``[t0, t1)``; none when the run is too short for that span."""
    if t1 <= t0:
        return []
    count = int(rng.poisson(per_hour * max(0.0, t1 - t0) / 3600))
    return sorted(float(t) for t in rng.uniform(t0, t1, count))


def _visit_starts(
    rng: np.random.Generator, scenario: Scenario, start: float, last_start: float
) -> list[float]:
    starts = [start]
    if rng.random() < scenario.revisit_share:
        later = start + float(rng.uniform(900, 2400))
        if later < last_start:
            starts.append(later)
    return starts


def _non_member(
    rng: np.random.Generator, layout: Layout, new_phone: Callable[..., Phone], start: float
) -> _Emitter:
    """A phone that must never produce an event: a chain member of another store (right prefix,
    unknown key), another app's UUID, or a device with no service UUID at all (earbuds, watches)."""
    kind = rng.choice(3, p=[0.5, 0.25, 0.25])
    if kind == 0:
        phone = new_phone(rng.bytes(16))
    elif kind == 1:
        phone = new_phone(rng.bytes(16), rng.bytes(8))
    else:
        phone = new_phone(None)
        phone.extra_manufacturer = {"76": "1005" + rng.bytes(5).hex()}
    walk = (
        people.visit(rng, layout, "-", start)
        if rng.random() < 0.4
        else people.pass_by(rng, layout, "-", start, linger=bool(rng.random() < 0.2))
    )
    return _Emitter(phone, walk.path)


def _store_beacon(
    rng: np.random.Generator, layout: Layout, index: int, t0: float, t1: float
) -> _Emitter:
    """A store beacon on a shelf: iBeacon, or Eddystone UID with TLM interleaved."""
    x, y = layout.random_inside(rng)
    phone = Phone(
        interval_s=1.0,
        power_1m_dbm=float(-59 + rng.normal(0, 2)),
        carried_in_front=True,
        body_loss_db=0.0,
        height_m=2.0,
        clock_skew_s=0.0,
        address_seed=10_000 + index,
    )
    if index % 2 == 0:
        frame = IBeacon(uuid.UUID(int=0x5EED_0000 + index), 1, index, -59)
        frames = (_as_hex(advertising_data(frame)),)
    else:
        uid = EddystoneUID(-18, b"retailhub!", index.to_bytes(6, "big"))
        tlm = EddystoneTLM(2900 - index * 150, 21.5, 1000 + index, 36000)
        frames = (_as_hex(advertising_data(uid)),) * 9 + (_as_hex(advertising_data(tlm)),)
    return _Emitter(phone, people.standing(layout, x, y, t0, t1), frames)


def _as_hex(
    data: tuple[dict[int, bytes], dict[str, bytes]],
) -> tuple[dict[str, str], dict[str, str]]:
    manufacturer, service = data
    return (
        {str(k): v.hex() for k, v in manufacturer.items()},
        {k: v.hex() for k, v in service.items()},
    )


def _broadcast(
    rng: np.random.Generator, layout: Layout, radio: Radio, emitters: list[_Emitter], t_end: float
) -> list[Advertisement]:
    """Every advertisement every scanner received, sorted by time."""
    rows: list[Advertisement] = []
    for emitter in emitters:
        phone, path = emitter.phone, emitter.path
        times = phone.advert_times(path.start, min(path.end, t_end), rng)
        if len(times) == 0:
            continue
        x, y, heading, _ = path.sample(times)
        windows = phone.window_at(times)
        for scanner in layout.scanners:
            received, rssi = radio.receive(phone, scanner, times, x, y, heading, rng)
            for i in np.flatnonzero(received).tolist():
                rows.append(
                    _record(
                        emitter, scanner.name, float(times[i]), int(rssi[i]), int(windows[i]), i
                    )
                )
    rows.sort(key=lambda a: a.t)
    return rows


def _record(
    emitter: _Emitter, scanner: str, t: float, rssi: int, window: int, index: int
) -> Advertisement:
    phone = emitter.phone
    manufacturer: dict[str, str] = dict(phone.extra_manufacturer)
    service: dict[str, str] = {}
    uuids: list[str] = []
    if emitter.frames:
        frame_manufacturer, service = emitter.frames[index % len(emitter.frames)]
        manufacturer.update(frame_manufacturer)
        address = phone.address(0)
    else:
        address = phone.address(window)
        if phone.key is not None:
            uuids = [phone.service_uuid(window)]
    return Advertisement(
        t=round(t, 3),
        scanner=scanner,
        address=address,
        rssi=rssi,
        manufacturer_data=manufacturer,
        service_data=service,
        service_uuids=uuids,
    )
