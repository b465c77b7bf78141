"""Relay nodes' batches arrive out of time order; presence decides on the order of sightings, so
the relay source holds them and hands them on in time order (beacons/sources/reorder.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner

from beacons.advertisement import Advertisement
from beacons.members_file import MemberKeys
from beacons.pipeline import replay_pipeline
from beacons.settings import PresenceSettings
from beacons.simulator import Scenario, simulate
from beacons.sources.mqtt_relay import MqttRelaySource
from beacons.sources.reorder import ReorderBuffer
from beacons.tokens import token_uuid, window_of
from beacons.trace import encode, write_trace
from hub.cli import main
from hub.clock import ManualClock
from hub.config import HubConfig
from hub.members import MemberIn
from hub.presence import PresenceFigures, PresenceService
from hub.services import build_services
from tests.fixtures.mosquitto import Mosquitto

#: The zones store's scanners: the door one decides walk-ins, the other two on level.
INTERIOR = {"role": "interior", "enter_dbm": -72, "pass_dbm": -80, "inside_dbm": -92}
SCANNERS = [{"name": "door", "zone": "entrance"}, {"name": "aisles", "zone": "aisles", **INTERIOR},
            {"name": "pickup", "zone": "pickup", **INTERIOR}]
PERIOD_S = 0.2  # a node publishes what it heard every 200 ms
TRANSIT_S = 0.6  # and its message reaches the hub up to this much later
STEP_S = 0.2  # the test hands the hub what arrives within this much of the clock's time at once


def adv(t: float, scanner: str, address: str = "a") -> Advertisement:
    return Advertisement(t=t, scanner=scanner, address=address, rssi=-70)


def test_the_buffer_hands_on_in_time_order_once_the_hold_has_passed() -> None:
    out: list[Advertisement] = []
    late: list[Advertisement] = []
    buffer = ReorderBuffer(1.0, out.append, late.append)
    # pickup's batch arrives before door's older one; equal times go by scanner name, a
    # node's own lines at one time in its order
    for item in (adv(10.3, "pickup"), adv(10.4, "pickup"), adv(10.1, "door", "x"),
                 adv(10.3, "door"), adv(10.1, "door", "y")):
        buffer.push(item)
    assert out == [] and len(buffer) == 5
    buffer.release(11.29)
    assert [(a.t, a.scanner, a.address) for a in out] == [(10.1, "door", "x"),
                                                          (10.1, "door", "y")]
    buffer.release(11.3)
    assert [(a.t, a.scanner) for a in out[2:]] == [(10.3, "door"), (10.3, "pickup")]
    assert len(buffer) == 1
    # older than what was handed on: at once, counted; as old as it but later by name: held
    buffer.push(adv(10.2, "aisles"))
    assert out[-1].t == 10.2 and buffer.late == 1
    buffer.push(adv(10.3, "aisles"))
    assert out[-1].t == 10.3 and buffer.late == 2 and len(buffer) == 1
    buffer.push(adv(10.3, "pickup"))
    assert buffer.late == 2 and len(buffer) == 2
    assert [(a.t, a.scanner) for a in late] == [(10.2, "aisles"), (10.3, "aisles")]


def zones_settings() -> dict[str, object]:
    return {"scanners": SCANNERS}


def as_arrived(
    seed: int, trace: list[Advertisement]
) -> list[tuple[float, str, list[Advertisement]]]:
    """Each node's 200 ms batches with the time they reach the hub: up to ``TRANSIT_S`` after
    their end, so one node's older batch often comes after another's newer one."""
    rng = random.Random(seed)
    batches: dict[tuple[str, int], list[Advertisement]] = {}
    for item in trace:
        batches.setdefault((item.scanner, int(item.t // PERIOD_S)), []).append(item)
    return sorted(
        ((slot + 1) * PERIOD_S + rng.uniform(0, TRANSIT_S), node, lines)
        for (node, slot), lines in batches.items()
    )


def replayed(tmp_path: Path, trace: list[Advertisement], members: dict[str, object]) -> list:
    """What ``retail-hub beacons replay`` prints for ``trace`` with the zones config."""
    path, members_path, config = (tmp_path / name for name in
                                  ("merged.jsonl", "members.json", "presence.toml"))
    write_trace(path, trace)
    members_path.write_text(json.dumps(members))
    config.write_text("[beacons.presence]\n" + "".join(
        "[[beacons.presence.scanners]]\n" + "".join(f"{k} = {json.dumps(v)}\n"
                                                    for k, v in scanner.items())
        for scanner in SCANNERS))
    result = CliRunner().invoke(main, ["beacons", "replay", str(path), "--members",
                                       str(members_path), "--config", str(config)])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


class RelayHub:
    """The hub's presence service on relay nodes over the real broker, on a manual clock; a
    publisher stands in for the nodes."""

    def __init__(self, tmp_path: Path, make_config: Callable[..., HubConfig], port: int,
                 clock: ManualClock, members: MemberKeys) -> None:
        self.clock = clock
        config = make_config(beacons={
            "enabled": True, "source": "mqtt", "relay_port": port,
            "chain_prefix": members.chain_prefix.hex(), "presence": zones_settings(),
        })
        self.topic = f"retail/v1/{config.store.id}/scanners/{{}}/adv"
        self.svc = build_services(config, clock, with_features=False)
        for member, key in members.keys.items():
            self.svc.members.upsert(MemberIn(id=member, consent=True, beacon_key=key.hex()))
        self.presence = PresenceService(self.svc)
        assert isinstance(self.presence.source, MqttRelaySource)
        self.source = self.presence.source
        self.port = port
        self.publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.sent = 0

    async def __aenter__(self) -> RelayHub:
        await self.presence.start()
        await asyncio.wait_for(self.source.connected.wait(), timeout=10)
        self.publisher.connect("127.0.0.1", self.port)
        self.publisher.loop_start()
        return self

    async def __aexit__(self, *_: object) -> None:
        self.publisher.loop_stop()
        self.publisher.disconnect()
        await self.presence.stop()
        self.svc.close()

    async def at(self, t: float) -> None:
        """Move the clock to ``t`` and let the hub's timers run."""
        self.clock.advance(max(0.0, t - self.clock.now()))
        for _ in range(3):
            await asyncio.sleep(0)

    async def send(self, node: str, lines: list[Advertisement]) -> None:
        """Publish one batch of ``node`` and wait until the hub has received it (the broker's
        round trip, not time: the clock stands still)."""
        await self.send_all([(node, lines)])

    async def send_all(self, batches: list[tuple[str, list[Advertisement]]]) -> None:
        """Publish ``batches`` (node, lines) in their order and wait until the hub has received
        them all."""
        for node, lines in batches:
            self.publisher.publish(self.topic.format(node),
                                   b"\n".join(encode(line) for line in lines), qos=1)
            self.sent += len(lines)
        for _ in range(5000):
            if self.source.received == self.sent:
                return
            await asyncio.sleep(0.001)
        raise AssertionError(f"the hub received {self.source.received} of {self.sent}")

    async def events(self) -> list[list[object]]:
        """The presence events recorded so far, as the replay command prints them."""
        await self.presence._events.join()
        rows = self.svc.db.query("SELECT t, member_id, event, zone FROM presence_events "
                                 "ORDER BY rowid")
        return [[round(r["t"], 3), r["member_id"], r["event"], r["zone"]] for r in rows]


async def test_out_of_order_relay_batches_decide_what_the_sorted_replay_decides(
    tmp_path: Path, make_config: Callable[..., HubConfig], mosquitto: Mosquitto
) -> None:
    """Why: the hub applied each relay batch as it arrived, and the engine judges a sighting
    against what the member's other scanners heard so far (zones, an interior scanner's lead,
    the walk-in's confirmation, the silence deadline): the hub announced other zones,
    arrivals and departures than a replay of the same day's merged recording."""
    sim = simulate(Scenario(seed=0, layout="zones", duration_s=1000, visits_per_hour=240,
                            passers_per_hour=60, non_members_per_hour=0, store_beacons=0))
    start = sim.advertisements[0].t
    trace = [item for item in sim.advertisements if item.t < start + 600]
    arrivals = as_arrived(0, trace)
    merged = sorted(trace, key=lambda item: (item.t, item.scanner))
    expected = [[e["t"], e["member"], e["event"], e["zone"]]
                for e in replayed(tmp_path, merged, sim.members.to_json())]
    assert {e[2] for e in expected} == {"arrived", "zone", "left"}
    # fed as they arrive, the very same sightings decide otherwise
    pipeline, _ = replay_pipeline(sim.members, PresenceSettings.model_validate(zones_settings()))
    unordered = [e for _, _, lines in arrivals for line in lines for e in pipeline.feed(line)]
    assert [[round(e.t, 3), e.member, e.event, e.zone] for e in unordered] != expected

    async with RelayHub(tmp_path, make_config, mosquitto.port, ManualClock(start),
                        sim.members) as hub:
        assert hub.source.reorder_s == 1.0
        # in steps of the hub's clock of STEP_S (a round trip through the broker for each of
        # the 4,700 batches took 10 s): a batch received up to that much before it arrives is
        # held and sorted as it would be then (received sooner, no line of it is later)
        step: list[tuple[str, list[Advertisement]]] = []
        for index, (arrival, node, lines) in enumerate(arrivals):
            if not step:
                await hub.at(arrival)
                step_end = arrival + STEP_S
            step.append((node, lines))
            if index + 1 == len(arrivals) or arrivals[index + 1][0] >= step_end:
                await hub.send_all(step)
                step = []
        await hub.at(trace[-1].t + hub.source.reorder_s)  # the last line is due
        hub.source.release()
        assert await hub.events() == expected
        assert hub.source.late == {} and hub.presence.pipeline.advertisements == len(trace)


async def test_no_departure_is_decided_while_a_later_sighting_is_held(
    tmp_path: Path, make_config: Callable[..., HubConfig], mosquitto: Mosquitto
) -> None:
    """The hub's timer decides departures only up to what the relay has applied: a member heard
    just before their silence deadline, in a sighting still held, is still here."""
    start = 1_767_268_800.0
    members = MemberKeys(bytes(range(8)), {"m1": bytes(range(16))})
    left_after_s = PresenceSettings().left_after_s

    def sighting(t: float) -> Advertisement:
        uuid = token_uuid(members.chain_prefix, members.keys["m1"], window_of(t))
        return Advertisement(t=t, scanner="aisles", address="a", rssi=-60, service_uuids=[uuid])

    async with RelayHub(tmp_path, make_config, mosquitto.port, ManualClock(start),
                        members) as hub:
        await hub.send("aisles", [sighting(start), sighting(start + 0.1)])
        await hub.at(start + 1.1)
        assert await hub.events() == [[round(start + 0.1, 3), "m1", "arrived", "aisles"]]
        due = start + 0.1 + left_after_s
        await hub.at(due - 0.9)  # the hub's 1 s timer runs now, and next at due + 0.1
        await hub.at(due - 0.3)
        await hub.send("aisles", [sighting(due - 0.6), sighting(due - 0.5)])  # held past due
        for moment in (due + 0.1, due + 1.0, due + 2.0):
            await hub.at(moment)
        assert len(await hub.events()) == 1
        assert [view.member for view in hub.presence.present()] == ["m1"]


async def test_lines_applied_late_are_a_figure_per_node(
    tmp_path: Path, make_config: Callable[..., HubConfig], mosquitto: Mosquitto
) -> None:
    """Why: a node whose clock is behind was logged once and then only visible in the source's
    own count; staff's monitoring reads /metrics."""
    start = 1_767_268_800.0
    members = MemberKeys(bytes(range(8)), {"m1": bytes(range(16))})
    async with RelayHub(tmp_path, make_config, mosquitto.port, ManualClock(start),
                        members) as hub:
        await hub.send("door", [adv(start, "door"), adv(start + 0.5, "door")])
        await hub.at(start + 1.6)  # both handed on
        await hub.send("aisles", [adv(start + 0.2, "aisles"), adv(start + 0.3, "aisles")])
        hub.svc.presence = hub.presence
        hub.svc.metrics.registry.register(PresenceFigures(hub.svc))
        figures = hub.svc.metrics.render().decode()
    assert 'hub_presence_relay_late_total{node="aisles"} 2.0' in figures
    assert 'node="door"' not in figures.split("hub_presence_relay_late_total")[-1]


async def test_a_line_later_than_the_hold_is_applied_at_once_and_named(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """A node whose clock is behind, or whose link stalled: what it says is still used (the
    member is there), applied late, counted by node and logged once."""
    clock = ManualClock(100.0)
    source = MqttRelaySource(host="127.0.0.1", port=mosquitto.port, store="s1",
                             clock=clock.now, sleep=clock.sleep)
    got: list[Advertisement] = []
    task = asyncio.create_task(source.run(got.append))
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)

    async def send(node: str, *items: Advertisement) -> None:
        publisher.publish(f"retail/v1/s1/scanners/{node}/adv",
                          b"\n".join(encode(item) for item in items), qos=1)
        for _ in range(5000):
            if source.received + sum(source.rejected.values()) >= sent[0] + len(items):
                break
            await asyncio.sleep(0.001)
        sent[0] += len(items)

    sent = [0]
    try:
        await asyncio.wait_for(source.connected.wait(), timeout=10)
        publisher.connect("127.0.0.1", mosquitto.port)
        publisher.loop_start()
        await send("door", adv(99.5, "door"), adv(99.9, "door"))
        assert [a.t for a in got] == []  # held: not 1 s old yet
        assert source.release() == 99.0
        clock.advance(0.6)  # the release timer hands on what is due
        for _ in range(3):
            await asyncio.sleep(0)
        assert [a.t for a in got] == [99.5]
        with caplog.at_level(logging.WARNING, logger="beacons.sources.mqtt_relay"):
            await send("aisles", adv(99.4, "aisles"), adv(99.45, "aisles"), adv(99.95, "aisles"))
        assert [(a.t, a.scanner) for a in got] == [(99.5, "door"), (99.4, "aisles"),
                                                   (99.45, "aisles")]
        assert source.late == {"aisles": 2}
        assert [r.getMessage() for r in caplog.records] == [
            "relay node aisles sent an advertisement 1.2 s old after newer ones were applied "
            "(the hold is 1.0 s); applied late. Its clock may be behind or its link slow: "
            "check NTP on the node, or raise beacons.relay_reorder_s"]
        clock.advance(0.4)
        assert source.release() == pytest.approx(100.0)
        assert [(a.t, a.scanner) for a in got[3:]] == [(99.9, "door"), (99.95, "aisles")]
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
