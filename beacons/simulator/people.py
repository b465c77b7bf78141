"""The crowd: members who walk in and wander, passers-by on the pavement, window-shoppers who stop
just outside the open door, and the ground truth each of them implies."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from beacons.simulator.itinerary import Itinerary, ItineraryBuilder
from beacons.simulator.layout import Layout

INTO_SHOP = math.pi / 2
TRUTH_STEP_S = 0.5
SHY_DISTANCE_M = 0.5  # walkers keep this far from a building face and the kerb


@dataclass
class Walk:
    """One person's path and what the ground truth says about it."""

    path: Itinerary
    kind: str  # "visit" | "passer" | "window_shopper"
    truth: list[dict[str, object]] = field(default_factory=list)
    entered: float | None = None
    exited: float | None = None


def _speed(rng: np.random.Generator) -> float:
    return float(np.clip(rng.normal(1.25, 0.25), 0.6, 1.9))


def _street_start(rng: np.random.Generator, layout: Layout) -> tuple[float, float, int]:
    """Where someone starts along the pavement: anywhere across it, keeping the half-metre shy
    distance walkers leave to a building face and to the kerb."""
    side = 1 if rng.random() < 0.5 else -1
    y = -float(rng.uniform(SHY_DISTANCE_M, layout.pavement - SHY_DISTANCE_M))
    return layout.door_x - side * float(rng.uniform(25, 40)), y, side


def _linger_spot(rng: np.random.Generator, layout: Layout) -> tuple[float, float]:
    """Where a window-shopper stands: half in front of the open door, 1-3 m out from the threshold
    (closer would block the way in), half at a display window beside it, close to the glass."""
    if rng.random() < 0.5:
        out = float(rng.uniform(1.0, min(3.0, layout.pavement - SHY_DISTANCE_M)))
        return layout.door_x + float(rng.uniform(-0.5, 0.5)) * layout.door_width, -out
    side = 1 if rng.random() < 0.5 else -1
    beside = layout.door_width / 2 + float(rng.uniform(0.3, 4.0))
    return layout.door_x + side * beside, -float(rng.uniform(0.3, 1.0))


def _linger(b: ItineraryBuilder, rng: np.random.Generator, seconds: float) -> None:
    """Stand looking into the shop, shifting weight a little now and then."""
    remaining = seconds
    while remaining > 0:
        part = min(remaining, float(rng.uniform(5, 30)))
        b.stay(part, facing=INTO_SHOP + float(rng.normal(0, 0.3)))
        remaining -= part
        if remaining > 0:
            b.walk_to(b.x + float(rng.normal(0, 0.2)), min(-0.2, b.y + float(rng.normal(0, 0.1))))


def visit(rng: np.random.Generator, layout: Layout, member: str, t: float) -> Walk:
    """A member walks along the pavement, maybe looks in the window first, enters, wanders
    between a few spots (zones) dwelling at each, and leaves the way they came."""
    x, y, side = _street_start(rng, layout)
    b = ItineraryBuilder(t, x, y, _speed(rng))
    if rng.random() < 0.15:
        b.walk_to(*_linger_spot(rng, layout))
        _linger(b, rng, float(rng.uniform(5, 60)))
    half = layout.door_width / 4
    b.walk_to(layout.door_x + float(rng.uniform(-half, half)), -0.6)
    b.walk_to(layout.door_x + float(rng.uniform(-half, half)), 1.2)
    for _ in range(int(rng.integers(2, 7))):
        zone = layout.zones[int(rng.integers(0, len(layout.zones)))]
        b.walk_to(*layout.random_inside(rng, zone))
        b.stay(float(rng.uniform(5, 90)), facing=float(rng.uniform(-math.pi, math.pi)))
    b.walk_to(layout.door_x + float(rng.uniform(-half, half)), 1.2)
    b.walk_to(layout.door_x + float(rng.uniform(-half, half)), -0.6)
    out_side = side if rng.random() < 0.7 else -side
    b.walk_to(b.x + out_side * 2.0, y)
    b.walk_to(layout.door_x + out_side * float(rng.uniform(25, 40)), y)
    walk = Walk(b.path, "visit")
    (entered, _), (exited, _) = b.crossings[0], b.crossings[-1]
    walk.entered, walk.exited = entered, exited
    walk.truth = _visit_truth(layout, b.path, member, entered, exited)
    return walk


def _visit_truth(
    layout: Layout, path: Itinerary, member: str, entered: float, exited: float
) -> list[dict[str, object]]:
    times = np.arange(entered + 0.05, exited, TRUTH_STEP_S)
    x, y, _, _ = path.sample(times)
    zones = layout.zone_at(x, np.maximum(y, 0.0))
    first = zones[0] if len(zones) else layout.zones[0].name
    truth: list[dict[str, object]] = [
        {"t": round(entered, 3), "member": member, "event": "arrived", "zone": first}
    ]
    current = first
    for t, zone in zip(times, zones, strict=True):
        if zone is not None and zone != current:
            truth.append({"t": round(float(t), 3), "member": member, "event": "zone", "zone": zone})
            current = zone
    truth.append({"t": round(exited, 3), "member": member, "event": "left", "zone": current})
    return truth


def pass_by(
    rng: np.random.Generator, layout: Layout, member: str, t: float, *, linger: bool
) -> Walk:
    """A member walking past; a window-shopper stops just outside for 10-180 s on the way; some
    others stop anywhere along the pavement (a phone call)."""
    x, y, side = _street_start(rng, layout)
    b = ItineraryBuilder(t, x, y, _speed(rng))
    if linger:
        b.walk_to(*_linger_spot(rng, layout))
        _linger(b, rng, float(rng.uniform(10, 180)))
        b.walk_to(b.x + side * 1.5, y)
    elif rng.random() < 0.1:
        b.walk_to(layout.door_x + side * float(rng.uniform(-20, 20)), y)
        b.stay(float(rng.uniform(5, 60)))
    b.walk_to(layout.door_x + side * float(rng.uniform(25, 40)), y)
    walk = Walk(b.path, "window_shopper" if linger else "passer")
    walk.truth = [
        {
            "t": round(b.path.start, 3),
            "member": member,
            "event": "passed",
            "zone": None,
            "until": round(b.path.end, 3),
            "lingered": linger,
        }
    ]
    return walk


def standing(layout: Layout, x: float, y: float, t0: float, t1: float) -> Itinerary:
    """Someone or something that does not move (a store beacon, a staff phone)."""
    b = ItineraryBuilder(t0, x, y, 1.0)
    b.stay(t1 - t0, facing=0.0)
    return b.path
