#!/usr/bin/env python3
"""Independent BLE shop simulator: one 'door' scanner just inside the entrance.

Coordinates (metres): the shop front is the plane y = 0, the shop is y > 0, the
pavement y < 0.  The door opening is centred at x = 0.  z is height.

Each seed draws a store: frontage 6-14 m, depth 8-20 m, door 1-2 m wide, pavement 2-4 m,
scanner 0.5-1.5 m inside the door at 1-2 m height.  Radio: log-distance path loss
(-65..-55 dBm at 1 m, exponent 1.9-2.6), shadowing as an OU process along each path
(sigma 3-6 dB, decorrelating over 1.5-4 m and 30 s), 3-12 dB front glass with a soft door
edge, 10 dB through a neighbour's wall, up to 8-15 dB body loss, per-packet Rician
(K 3-9 dB) / Rayleigh fading, a soft -97..-92 dBm sensitivity, 55-90 % of packets heard,
and (half the stores) BlueZ-like suppression of a repeated RSSI.
Per hour (Poisson): 30 member visits, 150 member passers-by (a quarter stop 10-180 s at
the door or glass), 100 non-member devices of 9 advertisement kinds; plus 50-150 members
who never come by and 1-3 fixed devices in the shop.  Phones vary in OS, advertising
interval (0.1-1 s), carry (hand, pockets, bag), gain (+-3 dB) and clock skew (1 s), rotate
token and address every 512 s window, and go quiet for a while when the app is backgrounded.

It was written from DESIGN.md's contracts (token, trace and members formats) without sight
of the presence engine, so the engine's defaults can be checked on stores it was not tuned on.

Writes TRACE.jsonl, MEMBERS.json, TRUTH.json into --out-dir.
"""

import argparse
import hashlib
import hmac
import json
import math
import os
import struct
from typing import Any

import numpy as np

WINDOW = 512
DT = 0.1  # trajectory grid (s)

Store = dict[str, Any]
Phone = dict[str, Any]
Rng = np.random.Generator


# --------------------------------------------------------------------- tokens
def fmt_uuid(b: bytes) -> str:
    h = b.hex()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def token_uuid(prefix: bytes, key: bytes, t: float) -> str:
    """The member's service UUID for the 512 s window holding t: chain prefix + HMAC token."""
    w = int(math.floor(t / WINDOW))
    tok = hmac.new(key, b"rh-token" + struct.pack(">Q", w), hashlib.sha256).digest()[:8]
    return fmt_uuid(prefix + tok)


def rand_addr(rng: Rng, kind: str) -> str:
    """A random BLE address; kind 'rpa' (resolvable private) or 'static' (random static)."""
    b = bytearray(rng.integers(0, 256, 6, dtype=np.uint8).tobytes())
    if kind == "rpa":  # resolvable private: top bits 01
        b[0] = (b[0] & 0x3F) | 0x40
    elif kind == "static":  # random static: top bits 11
        b[0] = b[0] | 0xC0
    return ":".join(f"{x:02X}" for x in b)


def sig16(u16: int) -> str:
    """The 128-bit form of a Bluetooth SIG 16-bit UUID."""
    return f"0000{u16:04x}-0000-1000-8000-00805f9b34fb"


# ---------------------------------------------------------------- store draw
def draw_store(rng: Rng) -> Store:
    front = float(rng.uniform(6, 14))  # frontage width
    left = float(rng.uniform(1.0, front - 2.0))  # shop spans x in [-left, front-left]
    return dict(
        frontage_m=front,
        shop_x=[-left, front - left],
        depth_m=float(rng.uniform(8, 20)),
        door_width_m=float(rng.uniform(1.0, 2.0)),
        pavement_width_m=float(rng.uniform(2.0, 4.0)),
        scanner=[
            float(rng.uniform(-1.0, 1.0)),
            float(rng.uniform(0.5, 1.5)),
            float(rng.uniform(1.0, 2.0)),
        ],
        p1m_dbm=float(rng.uniform(-65, -55)),  # mean RSSI at 1 m, LOS, phone in hand
        path_loss_exp=float(rng.uniform(1.9, 2.6)),
        shadow_sigma_db=float(rng.uniform(3.0, 6.0)),
        shadow_decorr_m=float(rng.uniform(1.5, 4.0)),
        shadow_tau_s=30.0,
        window_loss_db=float(rng.uniform(3.0, 12.0)),  # front glass
        neighbour_wall_db=10.0,  # path leaves via a neighbour's wall
        body_loss_db=float(rng.uniform(8.0, 15.0)),  # max, body between phone and scanner
        rician_k_los_db=float(rng.uniform(3.0, 9.0)),
        sensitivity_dbm=float(rng.uniform(-97.0, -92.0)),
        sens_soft_db=1.5,
        scan_rx_prob=float(rng.uniform(0.55, 0.9)),  # duty cycle, collisions, Wi-Fi
        dedupe_same_rssi=bool(rng.random() < 0.5),  # BlueZ PropertiesChanged-like
    )


# ------------------------------------------------------------- trajectories
class Traj:
    """Piecewise path sampled on a DT grid: x, y, heading, plus events."""

    def __init__(self, t0: float, x: float, y: float, z: float) -> None:
        self.t0 = t0
        self.xs, self.ys, self.hs = [x], [y], [0.0]
        self.z = z
        self.marks: dict[str, float] = {}
        self.shadow_db: np.ndarray | None = None  # cached by Radio.shadow

    @property
    def t(self) -> float:
        return self.t0 + (len(self.xs) - 1) * DT

    def walk_to(self, x: float, y: float, v: float) -> None:
        x0, y0 = self.xs[-1], self.ys[-1]
        d = math.hypot(x - x0, y - y0)
        if d < 1e-6:
            return
        hd = math.atan2(y - y0, x - x0)
        n = max(1, int(round(d / v / DT)))
        for i in range(1, n + 1):
            f = i / n
            self.xs.append(x0 + f * (x - x0))
            self.ys.append(y0 + f * (y - y0))
            self.hs.append(hd)

    def dwell(
        self,
        dur: float,
        rng: Rng,
        jitter: float = 0.3,
        bounds: tuple[float, float] | None = None,
        face: float | None = None,
    ) -> None:
        """Stand about, shifting a little (and turning, about `face` if given) every 5-20 s."""
        n = max(1, int(round(dur / DT)))
        x0, y0 = self.xs[-1], self.ys[-1]
        hd = face if face is not None else rng.uniform(-math.pi, math.pi)
        nxt = rng.uniform(5, 20)
        cx, cy = x0, y0
        for i in range(n):
            tt = i * DT
            if tt >= nxt:
                nxt += rng.uniform(5, 20)
                if face is None:
                    hd = rng.uniform(-math.pi, math.pi)
                else:
                    hd = face + rng.normal(0, 0.5)
                cx = x0 + rng.uniform(-jitter, jitter)
                cy = y0 + rng.uniform(-jitter, jitter)
                if bounds is not None:
                    cy = min(max(cy, bounds[0]), bounds[1])
            # drift smoothly towards the current jitter target
            px, py = self.xs[-1], self.ys[-1]
            self.xs.append(px + 0.05 * (cx - px))
            self.ys.append(py + 0.05 * (cy - py))
            self.hs.append(hd)

    def mark(self, name: str) -> None:
        self.marks[name] = self.t

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.array(self.xs), np.array(self.ys), np.array(self.hs)


def pavement_lane(rng: Rng, s: Store) -> float:
    return -float(rng.uniform(0.5, s["pavement_width_m"] - 0.3))


def make_visit(rng: Rng, s: Store, t_door_in: float) -> Traj:
    """Walk along the pavement, turn in at the door, visit spots, leave."""
    v = float(rng.uniform(1.0, 1.5))
    lane = pavement_lane(rng, s)
    side = rng.choice([-1, 1])
    x_start = side * float(rng.uniform(40, 60))
    dw = s["door_width_m"]
    xd = float(rng.uniform(-0.3, 0.3) * dw)
    z = float(rng.uniform(0.9, 1.4))
    # build with t0 = 0 and shift later
    tr = Traj(0.0, x_start, lane, z)
    tr.walk_to(xd + side * 1.0, lane, v)
    tr.walk_to(xd, -0.5, v * 0.9)
    tr.walk_to(xd, 0.0, v * 0.8)
    tr.mark("door_in")
    tr.walk_to(xd + rng.uniform(-0.5, 0.5), 1.5, v * 0.8)
    xl, xr = s["shop_x"]
    n_spots = int(rng.integers(2, 6))
    vin = float(rng.uniform(0.6, 1.1))
    for _ in range(n_spots):
        if rng.random() < 0.25:  # pickup counter / till, somewhere near the front
            sx = float(rng.uniform(xl + 0.5, xr - 0.5))
            sy = float(rng.uniform(1.5, 4.0))
        else:
            sx = float(rng.uniform(xl + 0.5, xr - 0.5))
            sy = float(rng.uniform(2.0, s["depth_m"] - 0.5))
        tr.walk_to(sx, sy, vin)
        dwell = float(np.clip(rng.lognormal(math.log(70), 0.8), 15, 300))
        tr.dwell(dwell, rng, bounds=(1.0, s["depth_m"] - 0.3))
    xo = float(rng.uniform(-0.3, 0.3) * dw)
    tr.walk_to(xo, 1.5, vin)
    tr.walk_to(xo, 0.0, v * 0.8)
    tr.mark("door_out")
    lane2 = pavement_lane(rng, s)
    side2 = rng.choice([-1, 1])
    tr.walk_to(xo, lane2, v * 0.9)
    tr.walk_to(side2 * float(rng.uniform(40, 60)), lane2, v)
    shift = t_door_in - tr.marks["door_in"]
    tr.t0 += shift
    tr.marks = {k: vv + shift for k, vv in tr.marks.items()}
    return tr


def make_passer(
    rng: Rng, s: Store, t_start: float, window_shopper: bool
) -> tuple[Traj, dict[str, Any] | None]:
    """Walk past along the pavement; a window shopper stops at the door or the glass."""
    v = float(rng.uniform(1.0, 1.6))
    lane = pavement_lane(rng, s)
    side = rng.choice([-1, 1])
    x0 = side * float(rng.uniform(45, 60))
    x1 = -side * float(rng.uniform(45, 60))
    z = float(rng.uniform(0.9, 1.4))
    tr = Traj(t_start, x0, lane, z)
    stop = None
    if window_shopper:
        xl, xr = s["shop_x"]
        dw = s["door_width_m"]
        if rng.random() < 0.5:
            kind = "door"
            sx = float(rng.uniform(-1.0, 1.0))
            sy = -float(rng.uniform(0.4, 1.5))
        else:
            kind = "window"
            # somewhere along the glass, not the door
            cands = []
            if -dw / 2 - 0.3 > xl + 0.3:
                cands.append((xl + 0.3, -dw / 2 - 0.3))
            if dw / 2 + 0.3 < xr - 0.3:
                cands.append((dw / 2 + 0.3, xr - 0.3))
            a, b = cands[int(rng.integers(len(cands)))]
            sx = float(rng.uniform(a, b))
            sy = -float(rng.uniform(0.3, 0.8))
        dur = float(math.exp(rng.uniform(math.log(10), math.log(180))))
        tr.walk_to(sx, lane if abs(lane - sy) < 0.2 else (lane + sy) / 2, v)
        tr.walk_to(sx, sy, v * 0.7)
        tr.mark("stop_start")
        tr.dwell(dur, rng, jitter=0.25, bounds=(sy - 0.3, min(-0.2, sy + 0.3)), face=math.pi / 2)
        tr.mark("stop_end")
        tr.walk_to(sx + (x1 - x0) / abs(x1 - x0) * 1.0, lane, v)
        stop = dict(kind=kind, x=sx, y=sy, t0=tr.marks["stop_start"], t1=tr.marks["stop_end"])
    tr.walk_to(x1, lane, v)
    return tr, stop


def make_static(rng: Rng, s: Store, t0: float, t1: float) -> Traj:
    """A device lying somewhere in the shop from t0 to t1."""
    xl, xr = s["shop_x"]
    tr = Traj(
        t0,
        float(rng.uniform(xl + 0.5, xr - 0.5)),
        float(rng.uniform(1.0, s["depth_m"] - 0.5)),
        float(rng.uniform(0.8, 2.0)),
    )
    tr.dwell(t1 - t0, rng, jitter=0.05, face=float(rng.uniform(-math.pi, math.pi)))
    return tr


# ------------------------------------------------------------------- radio
class Radio:
    def __init__(self, s: Store, rng: Rng) -> None:
        self.s = s
        self.rng = rng
        self.sc = np.array(s["scanner"])

    def mean_rssi(self, tr: Traj, t: np.ndarray, phone: Phone) -> tuple[np.ndarray, np.ndarray]:
        """Mean (pre-fast-fading) RSSI for packets at times t, and whether each is LOS."""
        s = self.s
        xs, ys, hs = tr.arrays()
        idx = np.clip(np.round((t - tr.t0) / DT).astype(int), 0, len(xs) - 1)
        x, y, h = xs[idx], ys[idx], hs[idx]
        sx, sy, sz = self.sc
        dx, dy, dz = sx - x, sy - y, sz - tr.z
        d = np.sqrt(dx * dx + dy * dy + dz * dz)
        d = np.maximum(d, 0.3)
        pl = 10 * s["path_loss_exp"] * np.log10(d)
        # front wall: where does the ray cross y = 0?
        outside = y < 0
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(outside, (0 - y) / (sy - y), 0.0)
        xc = x + f * (sx - x)
        hw = s["door_width_m"] / 2
        beyond = np.clip((np.abs(xc) - hw) / 0.3, 0, 1)  # soft door edge (diffraction)
        wall = np.where(outside, s["window_loss_db"] * beyond, 0.0)
        xl, xr = s["shop_x"]
        nb = outside & ((xc < xl) | (xc > xr))
        wall = wall + np.where(nb, s["neighbour_wall_db"], 0.0)
        # body: phone carried on the front (or back) of the torso; blocked when the
        # scanner is on the other side of the body.
        bearing = np.arctan2(dy, dx)
        c = np.cos(bearing - h) * phone["facing"]
        body = s["body_loss_db"] * np.clip((0.2 - c) / 1.0, 0, 1)
        # shadowing: OU process along the trajectory (per person)
        sh = self.shadow(tr)[idx]
        los = (wall < 1) & (body < 3)
        gain = s["p1m_dbm"] + phone["offset_db"] - phone["carry_loss_db"]
        return gain - pl - wall - body + sh, los

    def shadow(self, tr: Traj) -> np.ndarray:
        """Shadowing (dB) on tr's DT grid, drawn once per trajectory and cached on it."""
        if tr.shadow_db is not None:
            return tr.shadow_db
        s = self.s
        xs, ys, _ = tr.arrays()
        step = np.hypot(np.diff(xs, prepend=xs[0]), np.diff(ys, prepend=ys[0]))
        rho = np.exp(-step / s["shadow_decorr_m"] - DT / s["shadow_tau_s"])
        e = self.rng.normal(0, 1, len(xs))
        out = np.empty(len(xs))
        v = e[0] * s["shadow_sigma_db"]
        for i in range(len(xs)):
            v = rho[i] * v + math.sqrt(1 - rho[i] ** 2) * s["shadow_sigma_db"] * e[i]
            out[i] = v
        tr.shadow_db = out
        return out

    def fading_db(self, los: np.ndarray) -> np.ndarray:
        """Per-packet small-scale fading (channel hopping => independent)."""
        rng = self.rng
        k = np.where(los, 10 ** (self.s["rician_k_los_db"] / 10), 0.0)
        nu = np.sqrt(k / (k + 1))
        sig = np.sqrt(1 / (2 * (k + 1)))
        re = nu + sig * rng.normal(size=len(k))
        im = sig * rng.normal(size=len(k))
        p = re * re + im * im
        return 10 * np.log10(np.maximum(p, 1e-6))

    def receive(self, mean: np.ndarray, los: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reported RSSI per packet (integer dBm) and whether the scanner heard it."""
        s = self.s
        r = mean + self.fading_db(los)
        p_dec = 1 / (1 + np.exp(-(r - s["sensitivity_dbm"]) / (s["sens_soft_db"] / 2.2)))
        ok = (self.rng.random(len(r)) < p_dec) & (self.rng.random(len(r)) < s["scan_rx_prob"])
        return np.clip(np.round(r), -110, -20).astype(int), ok


def adv_times(rng: Rng, t0: float, t1: float, interval: float) -> np.ndarray:
    """Advertising times in [t0, t1): the interval plus 0-10 ms random delay (as BLE does)."""
    n = int((t1 - t0) / interval) + 2
    gaps = interval + rng.uniform(0, 0.010, n)
    t = t0 + rng.uniform(0, interval) + np.cumsum(gaps) - gaps[0]
    while t[-1] < t1:
        more = t[-1] + np.cumsum(interval + rng.uniform(0, 0.010, n))
        t = np.concatenate([t, more])
    return t[t < t1]


def draw_phone(rng: Rng) -> Phone:
    os_ = "ios" if rng.random() < 0.5 else "android"
    u = rng.random()
    if u < 0.2:
        iv = 0.1
    elif u < 0.45:
        iv = 0.25
    elif u < 0.7:
        iv = float(rng.uniform(0.3, 0.8))
    else:
        iv = 1.0
    cu = rng.random()
    if cu < 0.4:
        carry, cl, facing = "hand", float(rng.uniform(0, 2)), 1
    elif cu < 0.75:
        carry, cl, facing = "front_pocket", float(rng.uniform(3, 8)), 1
    elif cu < 0.9:
        carry, cl, facing = "back_pocket", float(rng.uniform(3, 8)), -1
    else:
        carry, cl, facing = "bag", float(rng.uniform(6, 12)), int(rng.choice([-1, 1]))
    return dict(
        os=os_,
        interval_s=iv,
        carry=carry,
        carry_loss_db=cl,
        facing=facing,
        offset_db=float(rng.normal(0, 3)),
        clock_skew_s=float(rng.normal(0, 1.0)),
        tx_power=(int(rng.choice([-7, 1, 7])) if os_ == "android" and rng.random() < 0.3 else None),
    )


def quiet_mask(t: np.ndarray, quiet: list[tuple[float, float]]) -> np.ndarray:
    """False for times inside any of the quiet (app backgrounded) intervals."""
    m = np.ones(len(t), bool)
    for a, b in quiet:
        m &= ~((t >= a) & (t < b))
    return m


# ----------------------------------------------------------- non-member ads
def nonmember_payload(rng: Rng, prefix: bytes, kind: str) -> dict[str, Any]:
    ad: dict[str, Any] = dict(
        local_name=None, manufacturer_data={}, service_data={}, service_uuids=[], tx_power=None
    )
    if kind == "ibeacon":
        body = b"\x02\x15" + rng.bytes(16) + rng.bytes(4) + struct.pack("b", -59)
        ad["manufacturer_data"] = {"76": body.hex()}
    elif kind == "apple_nearby":
        ad["manufacturer_data"] = {"76": ("1005" + rng.bytes(5).hex())}
    elif kind == "apple_findmy":
        ad["manufacturer_data"] = {"76": ("1219" + rng.bytes(25).hex())}
    elif kind == "fastpair":
        ad["service_data"] = {sig16(0xFE2C): rng.bytes(3).hex()}
        ad["service_uuids"] = [sig16(0xFE2C)]
    elif kind == "swiftpair":
        ad["manufacturer_data"] = {"6": ("030080" + rng.bytes(4).hex())}
        ad["local_name"] = "Surface Pen"
    elif kind == "random128":
        ad["service_uuids"] = [fmt_uuid(rng.bytes(16))]
    elif kind == "wearable":
        ad["service_uuids"] = [sig16(0x180D)]
        ad["local_name"] = str(rng.choice(["Mi Band 7", "Galaxy Watch5 (A1B2)", "Forerunner 255"]))
        ad["manufacturer_data"] = {"117": rng.bytes(8).hex()}
    elif kind == "eddystone":
        ad["service_data"] = {sig16(0xFEAA): ("00ee" + rng.bytes(16).hex() + "0000")}
        ad["service_uuids"] = [sig16(0xFEAA)]
    elif kind == "foreign_chain":  # chain prefix, key unknown to this store
        ad["service_uuids"] = [fmt_uuid(prefix + rng.bytes(8))]
    return ad


NM_KINDS = [
    "ibeacon",
    "apple_nearby",
    "apple_findmy",
    "fastpair",
    "swiftpair",
    "random128",
    "wearable",
    "eddystone",
    "foreign_chain",
]
NM_P = [0.08, 0.30, 0.12, 0.12, 0.03, 0.12, 0.10, 0.03, 0.10]


# --------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--duration", type=float, default=3600)
    ap.add_argument("--out-dir", default=".")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out_dir, exist_ok=True)
    s = draw_store(rng)
    radio = Radio(s, rng)
    T0 = 1764230400.0 + a.seed * 86400 + float(rng.uniform(0, 512))
    T1 = T0 + a.duration
    hours = a.duration / 3600
    prefix = rng.bytes(8)

    n_visits = int(rng.poisson(30 * hours))
    n_pass = int(rng.poisson(150 * hours))
    n_nm = int(rng.poisson(100 * hours))

    members: list[dict[str, str]] = []
    truth_v: list[dict[str, Any]] = []
    truth_p: list[dict[str, Any]] = []
    truth_nm: list[dict[str, Any]] = []
    rows: list[tuple[float, str, int, int]] = []  # (t, addr, rssi, payload_id)
    payloads: list[dict[str, Any]] = []

    def new_member() -> tuple[str, bytes]:
        mid = f"m{len(members) + 1:04d}"
        key = rng.bytes(16)
        members.append(dict(id=mid, key=key.hex()))
        return mid, key

    def emit_member(
        tr: Traj, t_a: float, t_b: float, key: bytes, phone: Phone, quiet: list[tuple[float, float]]
    ) -> list[str]:
        """Member phone: token + address rotate at the phone's window boundary."""
        t = adv_times(rng, max(t_a, T0), min(t_b, T1), phone["interval_s"])
        if len(t) == 0:
            return []
        t = t[quiet_mask(t, quiet)]
        mean, los = radio.mean_rssi(tr, t, phone)
        r, ok = radio.receive(mean, los)
        t, r = t[ok], r[ok]
        wins = np.floor((t + phone["clock_skew_s"]) / WINDOW).astype(int)
        used = []
        for w in np.unique(wins):
            sel = wins == w
            addr = rand_addr(rng, "rpa")
            used.append(addr)
            tok = token_uuid(prefix, key, w * WINDOW + 1)
            ad = dict(
                local_name=None,
                manufacturer_data={},
                service_data={},
                service_uuids=[tok],
                tx_power=phone["tx_power"],
            )
            payloads.append(ad)
            pid = len(payloads) - 1
            for tt, rr in zip(t[sel], r[sel], strict=True):
                rows.append((float(tt), addr, int(rr), pid))
        return used

    def closest(tr: Traj) -> tuple[float, float]:
        """Time and horizontal distance of tr's closest approach to the scanner."""
        xs, ys, _ = tr.arrays()
        sx, sy = s["scanner"][:2]
        d = np.hypot(xs - sx, ys - sy)
        i = int(np.argmin(d))
        return tr.t0 + i * DT, float(d[i])

    def heard(
        tr: Traj, key: bytes, phone: Phone, quiet: list[tuple[float, float]]
    ) -> dict[str, Any]:
        """Emit a member's advertisements; the truth fields every person's record shares."""
        addrs = emit_member(tr, tr.t0, tr.t, key, phone, quiet)
        tc, dc = closest(tr)
        return dict(
            t_start=tr.t0,
            t_end=tr.t,
            phone=phone,
            quiet=quiet,
            addresses=addrs,
            closest_t=tc,
            closest_m=dc,
        )

    # ---- visits: door-in uniformly in [T0+60, T1-240]
    for _ in range(n_visits):
        mid, key = new_member()
        tdi = float(rng.uniform(T0 + 60, T1 - 240))
        tr = make_visit(rng, s, tdi)
        phone = draw_phone(rng)
        quiet = []
        if rng.random() < 0.4:  # app backgrounded during the visit
            for _q in range(int(rng.integers(1, 3))):
                qa = float(
                    rng.uniform(
                        tr.marks["door_in"] + 10,
                        max(tr.marks["door_in"] + 11, tr.marks["door_out"] - 20),
                    )
                )
                quiet.append((qa, qa + float(rng.uniform(20, 120))))
        truth_v.append(
            dict(
                member=mid,
                door_in=tr.marks["door_in"],
                door_out=tr.marks["door_out"],
                **heard(tr, key, phone, quiet),
            )
        )

    # ---- passers-by (members) over the whole hour, fully inside the trace
    for _ in range(n_pass):
        mid, key = new_member()
        ws = bool(rng.random() < 0.25)
        ts = float(rng.uniform(T0, T1 - 300))
        tr, stop = make_passer(rng, s, ts, ws)
        phone = draw_phone(rng)
        quiet = []
        if rng.random() < 0.2:
            qa = float(rng.uniform(tr.t0, tr.t))
            quiet.append((qa, qa + float(rng.uniform(20, 120))))
        record = heard(tr, key, phone, quiet)
        truth_p.append(
            dict(
                member=mid,
                t_start=record.pop("t_start"),
                t_end=record.pop("t_end"),
                window_shopper=ws,
                stop=stop,
                **record,
            )
        )

    # ---- extra members whose keys the store holds but who never come by
    for _ in range(int(rng.integers(50, 150))):
        new_member()

    # ---- non-member devices: 45 % pavement, 15 % window-shoppers, 30 % shoppers, 10 % long-stay
    def emit_nonmember(
        tr: Traj, t_a: float, t_b: float, kind: str, iv: float, phone: Phone
    ) -> None:
        """Non-member device; rotating kinds change address (and payload) every 10-15 min."""
        t = adv_times(rng, max(t_a, T0), min(t_b, T1), iv)
        if len(t) == 0:
            return
        mean, los = radio.mean_rssi(tr, t, phone)
        r, ok = radio.receive(mean, los)
        t, r = t[ok], r[ok]
        rotate = kind in ("apple_nearby", "apple_findmy", "fastpair", "random128", "foreign_chain")
        period = float(rng.uniform(600, 900)) if rotate else 1e12
        ph = float(rng.uniform(0, period))
        seg = np.floor((t + ph) / period).astype(int)
        for w in np.unique(seg):
            sel = seg == w
            addr = rand_addr(rng, "rpa" if rotate else ("static" if rng.random() < 0.5 else "rpa"))
            ad = nonmember_payload(rng, prefix, kind)
            payloads.append(ad)
            pid = len(payloads) - 1
            for tt, rr in zip(t[sel], r[sel], strict=True):
                rows.append((float(tt), addr, int(rr), pid))

    for _ in range(n_nm):
        kind = str(rng.choice(NM_KINDS, p=NM_P))
        iv = float(rng.choice([0.1, 0.2, 0.3, 1.0, 2.0]))
        phone = draw_phone(rng)
        u = rng.random()
        if u < 0.45:
            tr, _ = make_passer(rng, s, float(rng.uniform(T0 - 60, T1)), False)
            role = "passer"
        elif u < 0.6:
            tr, _ = make_passer(rng, s, float(rng.uniform(T0 - 60, T1)), True)
            role = "window"
        elif u < 0.9:
            tr = make_visit(rng, s, float(rng.uniform(T0, T1)))
            role = "visit"
        else:
            tr = make_static(rng, s, T0, T0 + float(rng.uniform(600, 3600)))
            role = "static"
        emit_nonmember(tr, tr.t0, tr.t, kind, iv, phone)
        truth_nm.append(dict(kind=kind, role=role, t_start=tr.t0, t_end=tr.t))
    # fixed devices in the shop all hour (shop's own beacon, staff phones, card terminal)
    for kind in ["ibeacon", "apple_nearby", "wearable"][: int(rng.integers(1, 4))]:
        tr = make_static(rng, s, T0, T1)
        emit_nonmember(tr, T0, T1, kind, 1.0, draw_phone(rng))
        truth_nm.append(dict(kind=kind, role="fixed", t_start=T0, t_end=T1))

    rows.sort(key=lambda r: r[0])
    # BlueZ-like: an RSSI identical to the last reported one from that address is not reported
    n_dedup = 0
    with open(os.path.join(a.out_dir, "TRACE.jsonl"), "w") as f:
        last: dict[str, int] = {}
        for t, addr, rssi, pid in rows:
            if s["dedupe_same_rssi"] and last.get(addr) == rssi:
                n_dedup += 1
                continue
            last[addr] = rssi
            ad = payloads[pid]
            line = dict(
                t=round(t, 3),
                scanner="door",
                address=addr,
                rssi=rssi,
                tx_power=ad["tx_power"],
                local_name=ad["local_name"],
                manufacturer_data=ad["manufacturer_data"],
                service_data=ad["service_data"],
                service_uuids=ad["service_uuids"],
            )
            f.write(json.dumps(line) + "\n")
    with open(os.path.join(a.out_dir, "MEMBERS.json"), "w") as f:
        json.dump(dict(chain_prefix=prefix.hex(), members=members), f)
    with open(os.path.join(a.out_dir, "TRUTH.json"), "w") as f:
        truth = dict(
            seed=a.seed,
            t0=T0,
            t1=T1,
            store=s,
            chain_prefix=prefix.hex(),
            visits=truth_v,
            passers_by=truth_p,
            non_members=truth_nm,
            n_rows=len(rows) - n_dedup,
            n_dedup=n_dedup,
        )
        json.dump(truth, f, indent=1)
    summary = dict(
        seed=a.seed,
        visits=len(truth_v),
        passers_by=len(truth_p),
        window_shoppers=sum(p["window_shopper"] for p in truth_p),
        non_members=len(truth_nm),
        members_file=len(members),
        trace_lines=len(rows) - n_dedup,
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
