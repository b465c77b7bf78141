#!/usr/bin/env python3
"""Score the black-box presence detector (and a naive baseline) against TRUTH.json.

usage (from the repository root):
    .venv/bin/python bench/independent_store/sim.py --seed 1 --out-dir build/indep/s1
    .venv/bin/python bench/independent_store/sim.py --seed 2 --out-dir build/indep/s2
    .venv/bin/python bench/independent_store/score.py build/indep/s1 build/indep/s2

Add --config FILE to replay with that hub.toml's [beacons.presence].  Each RUN_DIR holds
TRACE.jsonl, MEMBERS.json, TRUTH.json; `retail-hub beacons replay` (found next to the running
Python) is run on it, and its stdout / stderr are kept there as bb_stdout.jsonl / bb_stderr.txt.
Prints one JSON per run, then, for several runs, a pooled JSON line (key "pooled").
"""

import argparse
import hashlib
import hmac
import json
import math
import os
import struct
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

RETAIL_HUB = Path(sys.executable).parent / "retail-hub"
WINDOW = 512
CREDIT_BEFORE = 30.0  # an arrival up to this long before the door-in still counts
NAIVE_DBM = -70

Event = dict[str, Any]


def run_blackbox(d: str, config: str | None) -> dict[str, Any]:
    """Replay the run through the engine; collect its events and any contract violations."""
    cmd = [str(RETAIL_HUB), "beacons", "replay", os.path.join(d, "TRACE.jsonl")]
    cmd += ["--members", os.path.join(d, "MEMBERS.json")]
    if config is not None:
        cmd += ["--config", config]
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    wall = time.time() - t
    with open(os.path.join(d, "bb_stdout.jsonl"), "w") as f:
        f.write(p.stdout)
    with open(os.path.join(d, "bb_stderr.txt"), "w") as f:
        f.write(p.stderr)
    events, odd = [], []
    for ln in p.stdout.splitlines():
        if not ln.strip():
            continue
        try:
            e = json.loads(ln)
        except Exception:
            odd.append(("not-json", ln[:200]))
            continue
        keys = set(e) if isinstance(e, dict) else set()
        if keys != {"t", "member", "event", "zone"}:
            odd.append(("keys", ln[:200]))
        if not isinstance(e, dict):
            continue
        if e.get("event") not in ("arrived", "zone", "left"):
            odd.append(("event", ln[:200]))
        if not isinstance(e.get("t"), (int, float)):
            odd.append(("t-type", ln[:200]))
        if e.get("zone") != "door":
            odd.append(("zone", ln[:200]))
        events.append(e)
    ts = [e["t"] for e in events if isinstance(e.get("t"), (int, float))]
    if any(b < a for a, b in pairwise(ts)):
        odd.append(("order", "events not in time order"))
    return dict(
        rc=p.returncode,
        wall_s=round(wall, 2),
        stderr=p.stderr[-2000:],
        odd=odd[:20],
        n_odd=len(odd),
        events=events,
    )


def naive(d: str) -> list[Event]:
    """First reading >= -70 dBm of a resolvable token => arrived, once per person."""
    with open(os.path.join(d, "MEMBERS.json")) as f:
        m = json.load(f)
    prefix = bytes.fromhex(m["chain_prefix"])
    keys = [(x["id"], bytes.fromhex(x["key"])) for x in m["members"]]
    cache: dict[int, dict[bytes, str]] = {}

    def table(w: int) -> dict[bytes, str]:
        """Token -> member id for window w (memoised)."""
        if w not in cache:
            tb = {}
            for mid, k in keys:
                tok = hmac.new(k, b"rh-token" + struct.pack(">Q", w), hashlib.sha256).digest()[:8]
                tb[tok] = mid
            cache[w] = tb
        return cache[w]

    seen, out = set(), []
    with open(os.path.join(d, "TRACE.jsonl")) as f:
        for ln in f:
            a = json.loads(ln)
            if a["rssi"] < NAIVE_DBM:
                continue
            for u in a["service_uuids"]:
                b = bytes.fromhex(u.replace("-", ""))
                if len(b) != 16 or b[:8] != prefix:
                    continue
                w = int(math.floor(a["t"] / WINDOW))
                mid = None
                for ww in (w, w - 1, w + 1):
                    mid = table(ww).get(b[8:])
                    if mid:
                        break
                if mid and mid not in seen:
                    seen.add(mid)
                    out.append(dict(t=a["t"], member=mid, event="arrived", zone="door"))
    return out


def score(events: list[Event], truth: dict[str, Any]) -> dict[str, Any]:
    """Arrival latency / misses for visits, false arrivals for passers-by ('_' keys: for pool)."""
    visits = {v["member"]: v for v in truth["visits"]}
    passers = {p["member"]: p for p in truth["passers_by"]}
    lat, dup, stray_visitor, unknown = {}, 0, 0, 0
    false_p, false_ws, false_persons = 0, 0, set()
    for e in events:
        if e.get("event") != "arrived":
            continue
        m, t = e.get("member"), e.get("t")
        if m in visits:
            v = visits[m]
            if v["door_in"] - CREDIT_BEFORE <= t <= v["door_out"]:
                if m in lat:
                    dup += 1
                else:
                    lat[m] = t - v["door_in"]
            else:
                stray_visitor += 1
        elif m in passers:
            false_p += 1
            false_persons.add(m)
            if passers[m]["window_shopper"]:
                false_ws += 1
        else:
            unknown += 1
    nws = sum(p["window_shopper"] for p in passers.values())
    # 'left' events (extra, not asked for): delay vs door-out for visits
    left = {}
    for e in events:
        if e.get("event") == "left" and e.get("member") in visits and e["member"] not in left:
            v = visits[e["member"]]
            if e["t"] >= v["door_in"]:
                left[e["member"]] = e["t"] - v["door_out"]
    lats = list(lat.values())
    return dict(
        summary(lats, len(visits), len(passers), nws, false_p, false_ws),
        latency_min=round(float(np.nanmin(lats or [np.nan])), 1),
        passers_with_false=len(false_persons),
        duplicate_arrivals=dup,
        visitor_arrivals_outside_window=stray_visitor,
        arrivals_unknown_member=unknown,
        _lat=lats,
        _n_false=false_p,
        _n_false_ws=false_ws,
        left_count=len(left),
        left_delay_p50=(round(float(np.median(list(left.values()))), 1) if left else None),
    )


def summary(
    lats: list[float], nv: int, npb: int, nws: int, nf: int, nfw: int
) -> dict[str, Any]:
    """The headline figures from arrival latencies and counts (one run or pooled runs)."""
    L = np.array(lats) if lats else np.array([np.nan])
    return dict(
        visits=nv,
        passers_by=npb,
        window_shoppers=nws,
        latency_p50=round(float(np.nanpercentile(L, 50)), 1),
        latency_p95=round(float(np.nanpercentile(L, 95)), 1),
        latency_max=round(float(np.nanmax(L)), 1),
        missed_pct=round(100 * (nv - len(lats)) / max(nv, 1), 1),
        false_per_100_passers=round(100 * nf / max(npb, 1), 1),
        false_per_100_window_shoppers=round(100 * nfw / max(nws, 1), 1),
        false_per_100_plain_passers=round(100 * (nf - nfw) / max(npb - nws, 1), 1),
    )


def pool(scores: list[dict[str, Any]]) -> dict[str, Any]:
    """Pooled figures over several runs."""
    return dict(
        summary(
            sum((s["_lat"] for s in scores), []),
            sum(s["visits"] for s in scores),
            sum(s["passers_by"] for s in scores),
            sum(s["window_shoppers"] for s in scores),
            sum(s["_n_false"] for s in scores),
            sum(s["_n_false_ws"] for s in scores),
        ),
        duplicate_arrivals=sum(s["duplicate_arrivals"] for s in scores),
        visitor_arrivals_outside_window=sum(s["visitor_arrivals_outside_window"] for s in scores),
        arrivals_unknown_member=sum(s["arrivals_unknown_member"] for s in scores),
    )


def strip(s: dict[str, Any]) -> dict[str, Any]:
    """Drop the '_' keys that only pool() needs."""
    return {k: v for k, v in s.items() if not k.startswith("_")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    ap.add_argument("--config", metavar="FILE", help="passed to `retail-hub beacons replay`")
    a = ap.parse_args()
    bbs, nvs = [], []
    for d in a.run_dirs:
        with open(os.path.join(d, "TRUTH.json")) as f:
            truth = json.load(f)
        bb = run_blackbox(d, a.config)
        sb = score(bb["events"], truth)
        sn = score(naive(d), truth)
        bbs.append(sb)
        nvs.append(sn)
        kinds: dict[Any, int] = {}
        for e in bb["events"]:
            kinds[e.get("event")] = kinds.get(e.get("event"), 0) + 1
        line = dict(
            run=d,
            seed=truth["seed"],
            blackbox=strip(sb),
            naive=strip(sn),
            bb_rc=bb["rc"],
            bb_wall_s=bb["wall_s"],
            bb_event_counts=kinds,
            bb_stderr_tail=bb["stderr"][-500:],
            bb_odd=bb["odd"],
            bb_n_odd=bb["n_odd"],
        )
        print(json.dumps(line))
    if len(bbs) > 1:
        print(json.dumps(dict(pooled=True, blackbox=pool(bbs), naive=pool(nvs))))


if __name__ == "__main__":
    main()
