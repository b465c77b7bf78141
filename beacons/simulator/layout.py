"""Store geometry for the simulator: a rectangular shop behind a street front, a pavement in front,
an open door in the front wall, named zones inside and scanner positions.

Coordinates in metres: x runs along the street, y = 0 is the front wall (y < 0 outside on the
pavement, y > 0 inside), z is height above the floor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INNER_DEPTH_M = (7.0, 10.0)  # the pair layout's interior scanner: this far in from the front


@dataclass(frozen=True, slots=True)
class Zone:
    """A named rectangle of the shop floor."""

    name: str
    x0: float
    y0: float
    x1: float
    y1: float

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Boolean mask of the points inside this zone."""
        return (x >= self.x0) & (x < self.x1) & (y >= self.y0) & (y < self.y1)


@dataclass(frozen=True, slots=True)
class ScannerPlacement:
    """Where a scanner sits, and the zone it reports."""

    name: str
    zone: str
    x: float
    y: float
    z: float


@dataclass(frozen=True, slots=True)
class Layout:
    """The shop: interior ``[0, width] x [0, depth]``, door centred at ``door_x`` in the front wall,
    pavement between ``y = -pavement`` and 0."""

    width: float
    depth: float
    door_x: float
    door_width: float
    pavement: float
    zones: tuple[Zone, ...]
    scanners: tuple[ScannerPlacement, ...]

    def zone_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Zone name per point (object array); ``None`` outside the shop."""
        out = np.full(x.shape, None, dtype=object)
        for zone in self.zones:
            out[zone.contains(x, y) & (out == None)] = zone.name  # noqa: E711 (numpy mask)
        return out

    def random_inside(
        self, rng: np.random.Generator, zone: Zone | None = None
    ) -> tuple[float, float]:
        """A random standing point on the shop floor (optionally within ``zone``), kept 0.5 m
        away from walls."""
        x0, y0, x1, y1 = (
            (zone.x0, zone.y0, zone.x1, zone.y1) if zone else (0.0, 0.0, self.width, self.depth)
        )
        return (
            float(rng.uniform(x0 + 0.5, max(x0 + 0.6, x1 - 0.5))),
            float(rng.uniform(max(y0, 1.5), max(max(y0, 1.5) + 0.1, y1 - 0.5))),
        )


def single_scanner_layout(
    rng: np.random.Generator, *, vary: bool, scanner: str = "door", inner: bool = False
) -> Layout:
    """The contract's default store: one scanner just inside the entrance, the whole shop being
    that scanner's zone. With ``vary`` the shop size, door, pavement width and scanner mounting
    change per seed. ``inner`` adds a second scanner, ``inner``, 7-10 m in from the front within
    2 m of the door's axis at 2.0-2.6 m (a ceiling, a shelf top, the till), reporting the same
    zone: the same store and crowd as without it, so the two deployments compare one to one."""
    width = float(rng.uniform(8, 25)) if vary else 14.0
    depth = float(rng.uniform(10, 30)) if vary else 18.0
    door_x = float(rng.uniform(2.5, width - 2.5)) if vary else width / 2
    door_width = float(rng.uniform(1.0, 2.2)) if vary else 1.6
    inset = float(rng.uniform(0.5, 1.5)) if vary else 1.0
    lateral = float(rng.uniform(-1.2, 1.2)) if vary else 0.8
    height = float(rng.uniform(0.8, 2.2)) if vary else 1.5
    pavement = float(rng.uniform(2.5, 5.0)) if vary else 4.0
    zones = (Zone(scanner, 0.0, 0.0, width, depth),)
    placements = (ScannerPlacement(scanner, scanner, door_x + lateral, inset, height),)
    # Drawn whether or not it is used, so a seed gives the same store with and without it.
    inner_at = ScannerPlacement(
        "inner",
        scanner,
        float(np.clip(door_x + rng.uniform(-2.0, 2.0), 0.5, width - 0.5)),
        float(min(rng.uniform(*INNER_DEPTH_M), depth - 1.0)),
        float(rng.uniform(2.0, 2.6)) if vary else 2.4,
    )
    if inner:
        placements += (inner_at,)
    return Layout(width, depth, door_x, door_width, pavement, zones, placements)


def zoned_layout(rng: np.random.Generator, *, vary: bool) -> Layout:
    """A larger shop with three zones (entrance, aisles, pickup) and a scanner in each."""
    width = float(rng.uniform(14, 30)) if vary else 20.0
    depth = float(rng.uniform(18, 36)) if vary else 24.0
    door_x = float(rng.uniform(3, width - 3)) if vary else width / 2
    entrance_end = depth * 0.25
    pickup_start = depth * 0.75
    zones = (
        Zone("entrance", 0.0, 0.0, width, entrance_end),
        Zone("aisles", 0.0, entrance_end, width, pickup_start),
        Zone("pickup", 0.0, pickup_start, width, depth),
    )
    height = float(rng.uniform(2.0, 2.8)) if vary else 2.4
    scanners = (
        ScannerPlacement("door", "entrance", door_x + 0.8, 1.5, height),
        ScannerPlacement("aisles", "aisles", width / 2, (entrance_end + pickup_start) / 2, height),
        ScannerPlacement("pickup", "pickup", width * 0.7, depth - 2.0, height),
    )
    pavement = float(rng.uniform(2.5, 5.0)) if vary else 4.0
    return Layout(width, depth, door_x, 1.6, pavement, zones, scanners)
