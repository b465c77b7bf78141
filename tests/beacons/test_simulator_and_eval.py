"""The simulator (deterministic per seed, truth consistent with the trace) and the scoring."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from beacons.errors import TraceError
from beacons.evaluation import evaluate, read_truth, score
from beacons.naive import ThresholdDetector
from beacons.presence import PresenceEngine, PresenceEvent
from beacons.settings import PresenceSettings
from beacons.simulator import Scenario, simulate
from beacons.simulator.layout import single_scanner_layout
from beacons.simulator.radio import Radio
from beacons.simulator.scenario import Physics
from beacons.tokens import TokenResolver

SMALL = dict(duration_s=1200, visits_per_hour=20, passers_per_hour=60, non_members_per_hour=30)


def test_same_seed_same_store_other_seed_other_store() -> None:
    a = simulate(Scenario(seed=4, **SMALL))
    b = simulate(Scenario(seed=4, **SMALL))
    c = simulate(Scenario(seed=5, **SMALL))
    assert a.advertisements == b.advertisements and a.truth == b.truth
    assert a.physics != c.physics


def test_pair_layout_is_the_single_store_plus_an_interior_scanner() -> None:
    single = simulate(Scenario(seed=6, **SMALL))
    pair = simulate(Scenario(seed=6, layout="pair", **SMALL))
    assert [s.name for s in pair.layout.scanners] == ["door", "inner"]
    assert pair.layout.scanners[0] == single.layout.scanners[0]
    assert pair.layout.width == single.layout.width and pair.physics == single.physics
    inner = pair.layout.scanners[1]
    assert inner.zone == "door" and 3.0 <= inner.y <= 10.0 and 0 < inner.x < pair.layout.width
    assert {a.scanner for a in pair.advertisements} == {"door", "inner"}


def test_shadowing_is_nothing_at_the_scanner_and_the_stores_sigma_far_from_it() -> None:
    near: list[float] = []
    far_ratio: list[float] = []
    around = np.linspace(0, 2 * math.pi, 12, endpoint=False)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        layout = single_scanner_layout(rng, vary=True)
        physics = Physics.draw(rng, vary=True)
        field = Radio(layout, physics, rng).fields["door"]
        at = layout.scanners[0]
        assert field.at(np.array([at.x]), np.array([at.y]))[0] == 0.0
        near += field.at(at.x + np.cos(around), at.y + np.sin(around)).tolist()
        # the pavement 25-40 m along the street, where passers-by start walking
        xs, ys = np.meshgrid(np.arange(at.x - 40, at.x - 25, 0.5), np.arange(-2.0, 0.0, 0.5))
        values = field.at(xs.ravel(), ys.ravel())
        far_ratio.append(float(np.mean(values**2)) / physics.shadow_sigma_db**2)
    assert math.sqrt(np.mean(np.square(near))) < 3.0  # a metre away in line of sight: a dB or two
    assert 0.6 < math.sqrt(np.mean(far_ratio)) < 1.4


def test_trace_is_time_ordered_and_resolves_to_the_truths_members() -> None:
    sim = simulate(Scenario(seed=2, **SMALL))
    times = [a.t for a in sim.advertisements]
    assert times == sorted(times)
    resolver = TokenResolver(sim.members.chain_prefix, sim.members.keys)
    seen = {resolver.resolve(u, a.t) for a in sim.advertisements for u in a.service_uuids}
    truth_members = {r["member"] for r in sim.truth if r["event"] in ("arrived", "passed")}
    assert truth_members <= seen | {None}
    assert len(seen - {None}) >= 0.9 * len(truth_members)
    # Non-member phones and store beacons are on the air too, and resolve to nobody.
    assert any(
        a.service_uuids and resolver.resolve(a.service_uuids[0], a.t) is None
        for a in sim.advertisements
    )
    assert any(a.service_data for a in sim.advertisements)


def test_every_visit_is_arrived_then_left_with_zones_inside() -> None:
    sim = simulate(Scenario(seed=3, layout="zones", **SMALL))
    open_visits: dict[str, float] = {}
    zones = {z.name for z in sim.layout.zones}
    for record in sim.truth:
        member, event = record["member"], record["event"]
        if event == "arrived":
            assert member not in open_visits
            open_visits[member] = float(record["t"])  # type: ignore[arg-type]
        elif event in ("zone", "left"):
            assert member in open_visits and record["zone"] in zones
            if event == "left":
                del open_visits[member]
    assert open_visits == {}


def test_scoring_counts_latency_misses_false_arrivals_and_flaps() -> None:
    truth = [
        {"t": 100.0, "member": "v1", "event": "arrived", "zone": "door"},
        {"t": 400.0, "member": "v1", "event": "left", "zone": "door"},
        {"t": 100.0, "member": "v2", "event": "arrived", "zone": "door"},
        {"t": 200.0, "member": "v2", "event": "left", "zone": "door"},
        {
            "t": 50.0,
            "member": "p1",
            "event": "passed",
            "zone": None,
            "until": 90.0,
            "lingered": True,
        },
        {
            "t": 50.0,
            "member": "p2",
            "event": "passed",
            "zone": None,
            "until": 90.0,
            "lingered": False,
        },
    ]
    events = [
        PresenceEvent(103.0, "v1", "arrived", "door"),
        PresenceEvent(250.0, "v1", "left", "door"),  # while still inside: a flap
        PresenceEvent(260.0, "v1", "arrived", "door"),
        PresenceEvent(600.0, "v1", "left", "door"),
        PresenceEvent(70.0, "p1", "arrived", "door"),  # a window-shopper, falsely
    ]
    metrics = score(truth, events, {"v2": [99.0, 101.5]}).metrics()
    assert metrics["arrival_latency_p50_s"] == 3.0
    assert metrics["missed_arrivals_pct"] == 50.0  # v2 never detected
    assert metrics["missed_by_cause_pct"] == {
        "quiet_at_the_door": 0.0,
        "already_present_at_the_door": 0.0,
        "heard_but_not_recognised": 50.0,  # v2 was heard crossing the door
    }
    assert metrics["false_arrivals_per_100_passers"] == 50.0
    assert metrics["false_arrivals_per_100_window_shoppers"] == 100.0
    assert metrics["flaps_per_visit_hour"] == round(1 / ((300 + 100) / 3600), 4)
    assert metrics["departure_latency_p50_s"] == 200.0
    assert metrics["zone_accuracy"] == round(287 / 297, 4)  # no zone while wrongly "left"


def test_evaluation_reads_the_advertisements_once_for_every_detector() -> None:
    """`beacons eval` streams a trace file: a store's day is millions of lines, so every
    detector is fed in the same pass, never from a list of the whole trace."""
    sim = simulate(Scenario(seed=3, **SMALL))
    settings = PresenceSettings()
    detectors = {
        "engine": lambda clock: PresenceEngine(settings, clock),
        "naive": lambda clock: ThresholdDetector(settings, -70.0),
    }
    listed = evaluate(list(enumerate(sim.advertisements, 1)), sim.truth, sim.members, detectors)
    streamed = evaluate(enumerate(sim.advertisements, 1), sim.truth, sim.members, detectors)
    assert streamed.advertisements == listed.advertisements == len(sim.advertisements)
    assert streamed.late == 0
    for name in detectors:
        assert streamed.scores[name].metrics() == listed.scores[name].metrics()
        assert streamed.scores[name].visits > 0
    assert listed.scores["naive"].latencies  # both detectors saw the members


def test_missed_arrivals_are_split_by_cause() -> None:
    truth = []
    for member in ("quiet", "looked", "unseen", "found"):
        truth += [
            {"t": 100.0, "member": member, "event": "arrived", "zone": "door"},
            {"t": 300.0, "member": member, "event": "left", "zone": "door"},
        ]
    heard = {
        "quiet": [60.0, 94.0, 106.0, 150.0],  # silent from 6 s before the door to 6 s after
        "looked": [40.0, 70.0, 100.5],
        "unseen": [98.0, 100.5, 103.0],
        "found": [100.5],
    }
    events = [
        PresenceEvent(40.0, "looked", "arrived", "door"),  # at the window, a minute early
        PresenceEvent(101.0, "found", "arrived", "door"),
        PresenceEvent(20.0, "unseen", "arrived", "door"),  # an earlier, separate sighting...
        PresenceEvent(50.0, "unseen", "left", "door"),  # ...let go before the door
    ]
    metrics = score(truth, events, heard).metrics()
    assert metrics["missed_arrivals_pct"] == 75.0
    assert metrics["missed_by_cause_pct"] == {
        "quiet_at_the_door": 25.0,
        "already_present_at_the_door": 25.0,
        "heard_but_not_recognised": 25.0,
    }


def test_a_visit_the_truth_never_closes_lasts_to_the_end_of_the_run() -> None:
    """Why: a truth file with "arrived" and no "left" made the zone scoring step one second at a
    time towards infinity, and eval never finished."""
    truth = [{"t": 100.0, "member": "v1", "event": "arrived", "zone": "door"}]
    events = [PresenceEvent(103.0, "v1", "arrived", "door")]
    metrics = score(truth, events, {"v1": [99.0, 103.0, 460.0]}).metrics()
    assert metrics["arrival_latency_p50_s"] == 3.0
    assert metrics["zone_accuracy"] == 1.0
    assert metrics["flaps_per_visit_hour"] == 0.0  # over the 360 s heard


@pytest.mark.timeout(20)
def test_a_visit_of_a_billion_seconds_is_scored_at_once() -> None:
    """Why: zone agreement stepped through a visit one second at a time, so a truth whose "left"
    came 1e9 s after its "arrived" kept eval at full CPU for hours."""
    truth = [
        {"t": 100.0, "member": "v1", "event": "arrived", "zone": "door"},
        {"t": 1e9, "member": "v1", "event": "zone", "zone": "till"},
        {"t": 1e9 + 100, "member": "v1", "event": "left", "zone": "till"},
    ]
    events = [PresenceEvent(103.0, "v1", "arrived", "door")]
    metrics = score(truth, events, {"v1": [99.0, 103.0]}).metrics()
    assert metrics["zone_accuracy"] == round((1e9 - 103) / (1e9 - 3), 4)


@pytest.mark.timeout(20)
def test_a_second_arrival_before_leaving_closes_the_first_visit() -> None:
    """Why: the first visit stayed open for ever (left = inf) and its zone scoring never ended."""
    truth = [
        {"t": 100.0, "member": "v1", "event": "arrived", "zone": "door"},
        {"t": 200.0, "member": "v1", "event": "arrived", "zone": "door"},
        {"t": 300.0, "member": "v1", "event": "left", "zone": "door"},
    ]
    events = [PresenceEvent(103.0, "v1", "arrived", "door")]
    metrics = score(truth, events, {"v1": [99.0, 103.0]}).metrics()
    assert metrics["visits"] == 2 and metrics["zone_accuracy"] == 1.0


ARRIVED = {"t": 100.0, "member": "v1", "event": "arrived", "zone": "door"}
LEFT = {"t": 200.0, "member": "v1", "event": "left", "zone": "door"}


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([ARRIVED, {**ARRIVED, "t": 150.0}, LEFT], ":2: member 'v1' arrives again without a"),
        ([LEFT], ":1: \"left\" for member 'v1', who has not arrived"),
        ([{**ARRIVED, "member": None}, LEFT], ':1: a "arrived" record needs "member"'),
        ([ARRIVED, {**LEFT, "member": 7}], ':2: a "left" record needs "member"'),
        ([{**ARRIVED, "t": math.nan}, LEFT], ":1: t must be a time in seconds"),
        ([ARRIVED, {**LEFT, "t": True}], ":2: t must be a time in seconds"),
        ([ARRIVED, {**LEFT, "t": 1e300}], ":2: t must be a time in seconds"),
        ([LEFT | {"event": "arrived"}, {**LEFT, "t": 50.0}], ":2: t 50.0 is before the line"),
        ([{k: v for k, v in ARRIVED.items() if k != "zone"}], ':1: "arrived" needs "zone"'),
        ([ARRIVED, {**LEFT, "member": "stranger"}], ":2: member 'stranger' is not in the"),
        ([], ": no visits and no passers-by in the truth"),
    ],
)
def test_malformed_truth_is_refused_with_its_line(
    tmp_path: Path, records: list[dict[str, object]], message: str
) -> None:
    """Why: such truth was scored as something else without a word (a null member skipped, NaN
    times compared false, an empty truth gave null metrics), or made eval spin for ever."""
    path = tmp_path / "truth.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(TraceError) as caught:
        read_truth(path, {"v1"})
    assert str(caught.value).startswith(f"{path}{message}"), str(caught.value)


def test_truth_with_a_byte_order_mark_reads(tmp_path: Path) -> None:
    path = tmp_path / "truth.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (json.dumps(ARRIVED) + "\n" + json.dumps(LEFT)).encode())
    assert read_truth(path, {"v1"}) == [ARRIVED, LEFT]


def test_a_run_shorter_than_the_arrival_margins_simulates_without_visits() -> None:
    """Why: a run under 120 s asked numpy for arrivals in a span that ends before it starts."""
    sim = simulate(Scenario(seed=1, duration_s=61))
    assert [r["event"] for r in sim.truth] == ["scenario"]
