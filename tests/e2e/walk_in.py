"""A member's phone walking into the store, as the door scanner hears it: the shopper-token
advertisements of DESIGN.md, approaching on the pavement, passing the scanner just inside the
entrance, then wandering the shop floor. Built by hand (not by the simulator) so the end-to-end
test depends only on the trace contract."""

from __future__ import annotations

import json
import random

from beacons.tokens import token_uuid, window_of

ADDRESS = "5A:11:22:33:44:55"


def rssi_at(offset: float, rng: random.Random) -> float:
    """Door-scanner RSSI ``offset`` seconds into the walk (with a little fading)."""
    if offset < 4.0:
        level = -86.0 + offset * 6.0  # along the pavement and up to the door
    elif offset < 6.0:
        level = -52.0  # passing the scanner within a metre
    else:
        level = -71.0  # somewhere on the shop floor
    return round(level + rng.gauss(0.0, 2.0))


def advertisement(t: float, offset: float, prefix: bytes, key: bytes,
                  rng: random.Random) -> bytes:
    """One trace line (JSON) as a relay node publishes it."""
    line = {
        "t": t, "scanner": "door", "address": ADDRESS, "rssi": rssi_at(offset, rng),
        "tx_power": None, "local_name": None, "manufacturer_data": {}, "service_data": {},
        "service_uuids": [token_uuid(prefix, key, window_of(t))],
    }
    return json.dumps(line).encode()
