"""Presence accuracy and speed on simulated stores with ground truth, engine vs the naive
fixed-threshold detector in the same run. Prints one JSON document.

    .venv/bin/python bench/presence.py                 # seeds 100-111 x 1 h, all three layouts
    .venv/bin/python bench/presence.py --seeds 4 --duration 1800 --layouts single
    .venv/bin/python bench/presence.py --quiet-at-entry-share 0.3 --no-throughput

Accuracy is pooled over stores whose physics is drawn from each seed (glass or solid fronts, path
loss, shadowing, scanner mounting, reception), so a figure is not one store's luck. The defaults
were tuned on seeds 0-11; ``--first-seed`` (100) keeps the report on other stores.
``by_front_wall`` splits the stores at 8 dB of front-wall loss: the wall is what separates people
inside from people on the pavement for a door scanner. ``missed_by_cause_pct`` tells the misses no
detector could help (the phone not heard at the door) from the detector's own. ``pair`` is the
single store plus an interior scanner; its traces are also scored with the door scanner alone
(``door_only_*``), so the second scanner's effect is measured on identical stores and crowds.

Throughput is the hot path a replay runs (trace line -> msgspec decode -> token lookup -> filter
and state machine) over an in-memory busy-store trace on one core, best of three; the decode-only
pass is the floor any detector pays. ``relay`` is the path of relay nodes' messages in the hub
(payload -> lines decoded and checked -> reorder buffer -> the same pipeline) on a busy
three-zone store, without the hold and with it, and how much later the hold applies each line
than it arrived (its messages arrive ``RELAY_TRANSIT_S`` at most after the 200 ms they cover,
the buffer is also released every 100 ms as in the hub; the broker itself is not measured).

    taskset -c 0 .venv/bin/python bench/presence.py --speed-only"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from beacons.advertisement import Advertisement  # noqa: E402
from beacons.evaluation import Score, evaluate  # noqa: E402
from beacons.naive import ThresholdDetector  # noqa: E402
from beacons.pipeline import Detector, PresencePipeline, TraceClock  # noqa: E402
from beacons.presence import PresenceEngine  # noqa: E402
from beacons.settings import PresenceSettings, ScannerSettings  # noqa: E402
from beacons.simulator import Scenario, Simulation, simulate  # noqa: E402
from beacons.sources.mqtt_relay import RELEASE_EVERY_S, MqttRelaySource  # noqa: E402
from beacons.sources.reorder import HOLD_S  # noqa: E402
from beacons.tokens import TokenResolver  # noqa: E402
from beacons.trace import decode_line, encode  # noqa: E402

NAIVE_DBM = -70.0
RELAY_PERIOD_S = 0.2  # a relay node publishes what it heard every 200 ms
RELAY_TRANSIT_S = 0.05  # its message reaches the hub up to this much after the batch's end
GLASS_FRONT_DB = 8.0
INNER_ENTER_DBM = -80.0


def zoned_settings() -> PresenceSettings:
    """The zones layout's scanners: the door one is an entrance, the others interior."""
    return PresenceSettings(
        scanners=[
            ScannerSettings(name="door", zone="entrance"),
            ScannerSettings(
                name="aisles",
                zone="aisles",
                role="interior",
                enter_dbm=-72,
                pass_dbm=-80,
                inside_dbm=-92,
            ),
            ScannerSettings(
                name="pickup",
                zone="pickup",
                role="interior",
                enter_dbm=-72,
                pass_dbm=-80,
                inside_dbm=-92,
            ),
        ]
    )


def pair_settings() -> PresenceSettings:
    """The pair layout's scanners: the door scanner as a doorway reference (keeps members present,
    decides nothing) and an interior one 7-10 m in, reporting the same zone, that decides when its
    level holds at INNER_ENTER_DBM and beats the door scanner's for interior_hold_s."""
    return PresenceSettings(
        scanners=[
            ScannerSettings(name="door", role="doorway"),
            ScannerSettings(
                name="inner",
                zone="door",
                role="interior",
                enter_dbm=INNER_ENTER_DBM,
                pass_dbm=-84,
                inside_dbm=-92,
                lead_db=0.0,
            ),
        ],
        interior_hold_s=3.0,
    )


def detectors(settings: PresenceSettings) -> dict[str, Callable[[TraceClock], Detector]]:
    return {
        "engine": lambda clock: PresenceEngine(settings, clock),
        "naive": lambda clock: ThresholdDetector(settings, NAIVE_DBM),
    }


def accuracy(
    layout: str, seeds: range, duration: float, scenario: dict[str, float]
) -> dict[str, object]:
    """Pooled metrics of both detectors over the simulated stores of ``seeds``. For ``pair`` the
    same traces are also scored with the door scanner alone (``door_only_*``), so the second
    scanner's effect is measured on identical stores and crowds."""
    settings = {"single": PresenceSettings, "pair": pair_settings, "zones": zoned_settings}[
        layout
    ]()
    dets = detectors(settings)
    if layout == "pair":
        dets.update({f"door_only_{k}": v for k, v in detectors(PresenceSettings()).items()})
    pooled = {name: Score() for name in dets}
    by_wall: dict[str, dict[str, Score]] = {}
    for seed in seeds:
        sim = simulate(Scenario(seed=seed, duration_s=duration, layout=layout, **scenario))
        scores = evaluate(enumerate(sim.advertisements, 1), sim.truth, sim.members, dets).scores
        wall = "glass" if sim.physics.wall_loss_db < GLASS_FRONT_DB else "solid"
        for name, score in scores.items():
            pooled[name].add(score)
            by_wall.setdefault(wall, {}).setdefault(name, Score()).add(score)
    out: dict[str, object] = {name: score.metrics() for name, score in pooled.items()}
    if layout != "zones":
        out["by_front_wall"] = {
            wall: {name: s.metrics() for name, s in scores.items()}
            for wall, scores in sorted(by_wall.items())
        }
    return out


def busy_store(layout: str = "single") -> Simulation:
    """A busy hour: many members, passers-by, non-member phones and store beacons."""
    return simulate(
        Scenario(
            seed=1000,
            duration_s=3600,
            layout=layout,
            visits_per_hour=60,
            passers_per_hour=300,
            non_members_per_hour=400,
            store_beacons=6,
        )
    )


def throughput(sim: Simulation) -> dict[str, object]:
    """Advertisements per second through each path, best of three runs."""
    data = b"\n".join(encode(adv) for adv in sim.advertisements) + b"\n"
    count = len(sim.advertisements)

    def decode_only() -> None:
        for line in io.BytesIO(data):
            decode_line(line)

    def full(make: Callable[[TraceClock], Detector]) -> Callable[[], None]:
        def run() -> None:
            clock = TraceClock()
            pipeline = PresencePipeline(
                TokenResolver(sim.members.chain_prefix, sim.members.keys), make(clock), clock
            )
            for _ in pipeline.run_lines(io.BytesIO(data), source="bench"):
                pass

        return run

    paths = {
        "decode_only": decode_only,
        **{name: full(make) for name, make in detectors(PresenceSettings()).items()},
    }
    rates = {}
    for name, run in paths.items():
        best = min(_timed(run) for _ in range(3))
        rates[name] = round(count / best)
    return {"advertisements": count, "trace_mb": round(len(data) / 1e6, 1), "per_second": rates}


def relay(sim: Simulation) -> dict[str, object]:
    """Advertisements per second through the relay path without the hold and with it (best of
    three), and the latency the hold adds to each line (release less arrival, in ms)."""
    rng = np.random.default_rng(0)
    batches: dict[tuple[str, int], list[Advertisement]] = {}
    for adv in sim.advertisements:
        batches.setdefault((adv.scanner, int(adv.t // RELAY_PERIOD_S)), []).append(adv)
    messages = sorted(
        ((slot + 1) * RELAY_PERIOD_S + float(rng.uniform(0, RELAY_TRANSIT_S)),
         f"retail/v1/bench/scanners/{node}/adv", b"\n".join(encode(adv) for adv in lines))
        for (node, slot), lines in batches.items()
    )
    count = len(sim.advertisements)
    arrived = {
        (adv.t, adv.scanner, adv.address): arrival
        for arrival, _, payload in messages
        for adv in map(decode_line, payload.splitlines())
    }

    def run(hold: float, delays: list[float] | None = None) -> None:
        now = messages[0][0]
        clock = TraceClock()
        pipeline = PresencePipeline(
            TokenResolver(sim.members.chain_prefix, sim.members.keys),
            PresenceEngine(zoned_settings(), clock),
            clock,
        )
        sink = pipeline.feed
        if delays is not None:
            def sink(adv: Advertisement) -> None:
                delays.append(now - arrived[adv.t, adv.scanner, adv.address])
                pipeline.feed(adv)
        source = MqttRelaySource(host="bench", port=1, store="bench", clock=lambda: now,
                                 reorder_s=hold)
        receive = source._receiver(sink)  # what the hub's loop runs per message
        timer = now + RELEASE_EVERY_S
        for arrival, topic, payload in messages:
            while hold and timer <= arrival:  # the source's own release timer
                now = timer
                source.release()
                timer += RELEASE_EVERY_S
            now = arrival
            receive(topic, payload)
        assert source.received == count and not source.rejected and not source.late

    delays: list[float] = []
    run(HOLD_S, delays)
    ms = np.array(delays) * 1000
    best = {0.0: math.inf, HOLD_S: math.inf}
    for _ in range(3):  # taken in turns, so a busy moment of the machine hits both alike
        for hold in best:
            best[hold] = min(best[hold], _timed(lambda: run(hold)))  # noqa: B023 - run now
    return {
        "advertisements": count,
        "messages": len(messages),
        "per_second": {
            "no_hold": round(count / best[0.0]),
            f"hold_{HOLD_S:g}s": round(count / best[HOLD_S]),
        },
        f"added_latency_ms_hold_{HOLD_S:g}s": {
            "applied": len(delays),
            "p50": round(float(np.percentile(ms, 50))),
            "p95": round(float(np.percentile(ms, 95))),
            "max": round(float(ms.max())),
        },
    }


def _timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=12, help="Stores per layout.")
    parser.add_argument(
        "--first-seed",
        type=int,
        default=100,
        help="First store seed. The defaults were tuned on seeds 0-7; report on others.",
    )
    parser.add_argument("--duration", type=float, default=3600.0, help="Seconds per store.")
    parser.add_argument(
        "--layouts",
        default="single,pair,zones",
        help="Comma-separated layouts: single (the default config), pair (door + an interior "
        "scanner, scored also with the door alone), zones.",
    )
    parser.add_argument(
        "--quiet-at-entry-share",
        type=float,
        default=0.0,
        help="Share of visits whose phone is already quiet at the door (a harder variant).",
    )
    parser.add_argument("--no-throughput", action="store_true", help="Skip the speed run.")
    parser.add_argument("--speed-only", action="store_true", help="Only the speed run.")
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    scenario = {"quiet_at_entry_share": args.quiet_at_entry_share}
    started = time.perf_counter()
    report: dict[str, object] = {
        "bench": "presence",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_1m": round(os.getloadavg()[0], 2),
        },
        "seeds": [seeds.start, seeds.stop - 1],
        "scenario": scenario,
        "duration_s": args.duration,
        "naive_dbm": NAIVE_DBM,
        "targets": {
            "arrival_latency_p95_s": 5,
            "missed_arrivals_pct": 1,
            "false_arrivals_per_100_passers": 1,
            "advertisements_per_s": 50_000,
        },
    }
    for layout in [] if args.speed_only else args.layouts.split(","):
        report[layout] = accuracy(layout, seeds, args.duration, scenario)
    if not args.no_throughput:
        report["throughput"] = throughput(busy_store())
        report["relay"] = relay(busy_store("zones"))
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
