"""Sources: bleak's own objects through the detection callback, BlueZ failures explained, the
watchdog restarting a silent scan on the simulated radio, replay pacing, relay nodes over MQTT."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import paho.mqtt.client as mqtt
import pytest
import yaml
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakBluetoothNotAvailableError, BleakBluetoothNotAvailableReason, BleakError

from beacons.advertisement import Advertisement
from beacons.errors import ScannerUnavailableError, TraceError
from beacons.fleet import load_fleet, relay_topic
from beacons.pipeline import PresencePipeline, TraceClock
from beacons.presence import PresenceEngine
from beacons.settings import PresenceSettings
from beacons.simulator import Scenario, simulate
from beacons.sources.base import DetectionCallback
from beacons.sources.bleak_scanner import BleakSource, explain, passive_patterns
from beacons.sources.mqtt_relay import (
    MAX_NODE_LABELS,
    MAX_PAYLOAD_BYTES,
    MAX_SKEW_S,
    OTHER_NODES,
    MqttRelaySource,
)
from beacons.sources.replay import ReplaySource
from beacons.sources.simulated import SimulatedRadio
from beacons.tokens import TokenResolver, token_uuid, window_of
from beacons.trace import decode_line, encode, write_trace
from hub.clock import ManualClock
from hub.doctor import check_relay_broker
from hub.presence import make_source
from hub.services import Services
from sync.broker_setup import password_hash
from sync.mqtt_client import tls_context
from tests.fixtures.mosquitto import Mosquitto
from tests.sync.conftest import RawClient
from tests.sync.pki import Pki, make_pki

ROOT = Path(__file__).resolve().parents[2]

PREFIX = bytes.fromhex("52455441494c4842")
KEY = bytes(range(16))


def bleak_pair(
    uuids: list[str], rssi: int, address: str = "5A:00:00:00:00:01"
) -> tuple[BLEDevice, AdvertisementData]:
    return BLEDevice(address, None, details=None), AdvertisementData(
        local_name=None,
        manufacturer_data={},
        service_data={},
        service_uuids=uuids,
        tx_power=None,
        rssi=rssi,
        platform_data=(),
    )


def test_bleak_detections_reach_the_engine_and_strangers_leave_no_trace() -> None:
    clock = ManualClock()
    trace_clock = TraceClock()
    engine = PresenceEngine(PresenceSettings(), trace_clock)
    pipeline = PresencePipeline(TokenResolver(PREFIX, {"m1": KEY}), engine, trace_clock)
    events = []
    callback = DetectionCallback("door", clock.now, lambda adv: events.extend(pipeline.feed(adv)))
    stranger = token_uuid(PREFIX, bytes(16), window_of(clock.now()))
    profile = [
        -90,
        -84,
        -78,
        -72,
        -66,
        -60,
        -58,
        -58,
        -70,
        -74,
        -76,
        -75,
        -74,
        -76,
        -75,
        -74,
        -76,
        -75,
    ] + [-75] * 70  # still heard inside confirm_s later
    for rssi in profile:
        member = token_uuid(PREFIX, KEY, window_of(clock.now()))
        callback(*bleak_pair([member.upper()], rssi))  # case as some stacks report it
        callback(*bleak_pair([stranger], rssi, address="7B:00:00:00:00:02"))
        clock.advance(0.5)
    assert [(e.event, e.member) for e in events] == [("arrived", "m1")]
    assert set(engine._members) == {"m1"}  # the stranger's token left no state
    assert pipeline.resolved == len(profile) and pipeline.advertisements == 2 * len(profile)
    assert callback.count == 2 * len(profile)


async def test_no_bluez_here_is_explained_not_a_traceback() -> None:
    clock = ManualClock()
    source = BleakSource("door", clock=clock.now, sleep=clock.sleep, adapter="hci0")
    with pytest.raises(ScannerUnavailableError, match="D-Bus system bus"):
        await source.run(lambda adv: None)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (BleakError("adapter 'hci3' not found"), "hci3 not found"),
        (
            BleakBluetoothNotAvailableError("off", BleakBluetoothNotAvailableReason.POWERED_OFF),
            "powered_off",
        ),
        (BleakError("passive scanning mode requires bluez or_patterns"), "--experimental"),
        # Why: these had said "check rfkill" and "needs --experimental" whatever went wrong.
        (
            BleakBluetoothNotAvailableError("none", BleakBluetoothNotAvailableReason.NO_BLUETOOTH),
            "plug in the USB Bluetooth adapter",
        ),
        (
            BleakBluetoothNotAvailableError(
                "denied", BleakBluetoothNotAvailableReason.DENIED_BY_SYSTEM
            ),
            "'bluetooth' group",
        ),
        (BleakError("[org.bluez.Error.NotReady] Resource Not Ready"), "Resource Not Ready"),
    ],
)
def test_bluez_errors_say_what_to_check(error: BaseException, message: str) -> None:
    explained = str(explain(error, adapter="hci3", mode="passive"))
    assert message in explained
    assert ("--experimental" in explained) == ("passive scanning" in str(error))


async def test_the_hub_keeps_trying_a_scan_that_cannot_start() -> None:
    """Why: one failed restart (bluetoothd restarting) or an adapter that came up after the hub
    ended scanning for good, and nobody restarts a hub whose other features are serving."""
    clock = ManualClock()
    radio = SimulatedRadio(
        [Advertisement(t=clock.now() + 100, scanner="door", address="5A:00:00:00:00:01", rssi=-60)],
        clock=clock.now,
        sleep=clock.sleep,
    )
    attempts: list[float] = []

    def factory(callback: object, **kwargs: object) -> object:
        attempts.append(clock.now())
        if len(attempts) <= 3:
            raise BleakError("adapter 'hci0' not found")
        return radio.scanner_factory("door")(callback, **kwargs)

    heard: list[Advertisement] = []
    source = BleakSource("door", clock=clock.now, sleep=clock.sleep, mode="active", adapter="hci0",
                         scanner_factory=factory, keep_trying=True)
    task = asyncio.create_task(source.run(heard.append))
    errors = []
    for _ in range(120):
        for _ in range(10):
            await asyncio.sleep(0)
        errors.append(source.error)
        clock.advance(1.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert [t - attempts[0] for t in attempts[:4]] == [0, 5, 15, 35]  # 5 s, doubling
    assert "hci0 not found" in str(errors[0]) and source.error is None
    assert len(heard) == 1
    with pytest.raises(ScannerUnavailableError, match="hci0 not found"):
        await BleakSource("door", clock=clock.now, sleep=clock.sleep, mode="active", adapter="hci0",
                          scanner_factory=_failing).run(heard.append)


def _failing(callback: object, **kwargs: object) -> object:
    raise BleakError("adapter 'hci0' not found")


def test_passive_patterns_match_the_token_prefix_as_sent_on_air() -> None:
    uuid = token_uuid(PREFIX, KEY, 1)
    on_air = bytes.fromhex(uuid.replace("-", ""))[::-1]  # 128-bit UUIDs go little-endian
    pattern = passive_patterns(PREFIX)[0]
    assert on_air[pattern.start_position :] == pattern.content_of_pattern


async def test_watchdog_restarts_a_silent_scan_on_the_simulated_radio() -> None:
    clock = ManualClock()
    adverts = [
        Advertisement(t=100.0 + i, scanner="door", address="5A:00:00:00:00:01", rssi=-60)
        for i in range(5)
    ]
    radio = SimulatedRadio(adverts, clock=clock.now, sleep=clock.sleep)
    heard: list[Advertisement] = []
    source = BleakSource(
        "door",
        clock=clock.now,
        sleep=clock.sleep,
        mode="active",
        watchdog_s=20.0,
        scanner_factory=radio.scanner_factory("door"),
    )
    task = asyncio.create_task(source.run(heard.append))
    for _ in range(100):  # let the tasks run, then move time a second
        for _ in range(10):
            await asyncio.sleep(0)
        clock.advance(1.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(heard) == 5
    assert [adv.t - heard[0].t for adv in heard] == [0.0, 1.0, 2.0, 3.0, 4.0]  # on-air pacing
    assert source.restarts >= 3  # silent after 4 s: restarted every 20 s since


async def test_realtime_replay_sleeps_the_gaps(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    write_trace(
        path,
        [Advertisement(t=t, scanner="door", address="a", rssi=-60) for t in (10.0, 10.5, 13.0)],
    )
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    got: list[Advertisement] = []
    await ReplaySource(path, realtime=True, sleep=sleep).run(got.append)
    assert [a.t for a in got] == [10.0, 10.5, 13.0] and slept == [0.5, 2.5]
    got.clear()
    slept.clear()
    await ReplaySource(path, sleep=sleep).run(got.append)
    assert len(got) == 3 and slept == []


async def published(
    source: MqttRelaySource, port: int, messages: list[tuple[str, bytes]], wanted: int
) -> list[Advertisement]:
    """Run ``source`` while a plain client publishes ``messages`` (topic, payload) on the broker
    at ``port``; what reached the hub once ``wanted`` advertisements arrived (or 4 s passed)."""
    got: list[Advertisement] = []
    task = asyncio.create_task(source.run(got.append))
    await asyncio.wait_for(source.connected.wait(), timeout=10)
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    publisher.connect("127.0.0.1", port)
    publisher.loop_start()
    for topic, payload in messages:
        publisher.publish(topic, payload, qos=1).wait_for_publish(5)
    for _ in range(200):
        if len(got) >= wanted:
            break
        await asyncio.sleep(0.02)
    publisher.loop_stop()
    publisher.disconnect()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return got


async def test_relay_nodes_deliver_over_a_real_broker(mosquitto: Mosquitto) -> None:
    source = MqttRelaySource(
        host="127.0.0.1", port=mosquitto.port, store="s1", clock=lambda: 5.0 + MAX_SKEW_S / 2
    )
    good = Advertisement(t=5.0, scanner="aisles", address="a", rssi=-70, service_uuids=["x"])
    wrong_node = Advertisement(t=5.1, scanner="door", address="b", rssi=-70)
    # A node whose clock is off: its beacons would look missing, its members leave and return.
    unsynced = Advertisement(t=5.0 + 2 * MAX_SKEW_S, scanner="aisles", address="c", rssi=-70)
    payload = b"\n".join(
        [encode(good), b"{broken", encode(wrong_node), encode(unsynced), encode(good)]
    )
    oversized = b"\n".join([encode(good)] * (MAX_PAYLOAD_BYTES // len(encode(good)) + 1))
    got = await published(source, mosquitto.port, [
        ("retail/v1/s1/scanners/aisles/adv", oversized),
        ("retail/v1/s1/scanners/aisles/adv", payload),
        ("retail/v1/other-store/scanners/x/adv", encode(good)),
    ], wanted=2)
    assert got == [good, good]
    assert source.rejected == {"aisles": 4}
    assert json.loads(encode(got[0]))["scanner"] == "aisles"


async def test_relay_hears_only_the_stores_declared_nodes(mosquitto: Mosquitto) -> None:
    """Why: any name on the relay topic was heard, and each new one was a metric series and a
    log line of its own: anyone on the store network could grow both without end."""
    source = MqttRelaySource(host="127.0.0.1", port=mosquitto.port, store="s1",
                             clock=lambda: 5.0, nodes=["aisles"])
    got = await published(source, mosquitto.port, [
        (f"retail/v1/s1/scanners/{node}/adv",  # a second old: past the reorder hold at once
         encode(Advertisement(t=4.0, scanner=node, address="a", rssi=-70)))
        for node in ("ghost", "aisles")
    ], wanted=1)
    assert [adv.scanner for adv in got] == ["aisles"]
    assert source.rejected == {OTHER_NODES: 1}
    # a store that declares no nodes hears any, but counts at most so many names apart
    open_store = MqttRelaySource(host="127.0.0.1", port=1, store="s1", clock=lambda: 5.0)
    for number in range(MAX_NODE_LABELS + 40):
        open_store._deliver(f"retail/v1/s1/scanners/n{number}/adv", b"{broken", got.append)
    assert len(open_store.rejected) == MAX_NODE_LABELS + 1
    assert open_store.rejected[OTHER_NODES] == 40
    heard = Advertisement(t=5.0, scanner="n1", address="a", rssi=-70)
    open_store._deliver("retail/v1/s1/scanners/n1/adv", b"\xef\xbb\xbf" + encode(heard) + b"\r\n",
                        got.append)
    assert got[-1] == heard  # a byte-order mark and CRLF, as a Windows-built tool may send


# --- relay nodes on a broker that takes no anonymous clients ----------------------------------

RELAY_TOPIC = "retail/v1/s1/scanners/aisles/adv"


def secured_broker(folder: Path, pki: Pki | None = None) -> Mosquitto:
    """A broker that wants a password (users ``hub`` and ``node``), over TLS when ``pki``."""
    folder.mkdir(parents=True, exist_ok=True)
    passwd = folder / "passwd"
    passwd.write_text(f"hub:{password_hash('hub-secret')}\nnode:{password_hash('node-secret')}\n")
    passwd.chmod(0o600)
    tls = f"certfile {pki.server_cert}\nkeyfile {pki.server_key}\n" if pki else ""
    broker = Mosquitto(
        folder,
        config_text="listener {port} 127.0.0.1\n" + tls + "allow_anonymous false\n"
        f"password_file {passwd}\npersistence false\n",
    )
    broker.start()
    return broker


async def relay_outcome(
    source: MqttRelaySource,
    broker: Mosquitto,
    ca_file: Path | None = None,
    topic: str = RELAY_TOPIC,
    adv: Advertisement | None = None,
) -> list[Advertisement]:
    """Run the relay source while the ``aisles`` node (logged in as ``node``) publishes one
    advertisement (``RELAYED``) on ``topic``; what reached the hub, once it has arrived or the
    source reports an error."""
    got: list[Advertisement] = []
    task = asyncio.create_task(source.run(got.append))
    node: RawClient | None = None
    try:
        for _ in range(500):
            if source.error is not None or got:
                break
            if source.connected.is_set() and node is None:
                node = RawClient(broker.port, "aisles", username="node", password="node-secret",
                                 ca_file=ca_file)
                assert node.publish(topic, encode(adv or RELAYED)) == 0
            await asyncio.sleep(0.02)
    finally:
        if node is not None:
            node.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return got


#: A second before the relay's clock (5.0): handed on as it arrives, past the reorder hold.
RELAYED = Advertisement(t=4.0, scanner="aisles", address="a", rssi=-70, service_uuids=["x"])


def relay(port: int, **login: Any) -> MqttRelaySource:
    return MqttRelaySource(host="127.0.0.1", port=port, store="s1", clock=lambda: 5.0, **login)


async def test_relay_logs_in_with_its_password_and_a_wrong_one_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Why: the relay source connected anonymously, so a store had to open its broker to any
    client on the network; and a refused login was retried without a word."""
    broker = secured_broker(tmp_path / "broker")
    try:
        good = relay(broker.port, username="hub", password="hub-secret")
        assert await relay_outcome(good, broker) == [RELAYED]
        assert good.error is None
        with caplog.at_level("ERROR", logger="beacons.sources.mqtt_relay"):
            wrong = relay(broker.port, username="hub", password="not-the-secret")
            assert await relay_outcome(wrong, broker) == []
            anonymous = relay(broker.port)
            assert await relay_outcome(anonymous, broker) == []
    finally:
        broker.kill()
    assert f"broker 127.0.0.1:{broker.port} refused the hub logging in as user 'hub' (" in str(
        wrong.error
    )
    assert "check the relay user name and password file" in str(wrong.error)
    assert "refused the hub logging in anonymously" in str(anonymous.error)
    assert not wrong.connected.is_set()
    assert "not-the-secret" not in caplog.text and "refused the hub logging in" in caplog.text


async def test_relay_speaks_tls_and_verifies_the_broker(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    broker = secured_broker(tmp_path / "broker", pki)
    try:
        secure = relay(broker.port, username="hub", password="hub-secret",
                       tls=tls_context(pki.ca_cert))
        assert await relay_outcome(secure, broker, pki.ca_cert) == [RELAYED]
        # A broker whose certificate another CA signed (an impostor on the store network).
        stranger = make_pki(tmp_path / "other-pki")
        misled = relay(broker.port, username="hub", password="hub-secret",
                       tls=tls_context(stranger.ca_cert))
        assert await relay_outcome(misled, broker) == []
        # Plain TCP to a TLS listener gets no CONNACK: it is reported, not waited on silently.
        plain = relay(broker.port, username="hub", password="hub-secret")
        assert await relay_outcome(plain, broker) == []
    finally:
        broker.kill()
    assert "failed TLS (certificate" in str(misled.error)
    assert "check that the relay CA file (beacons.relay_tls_ca_file) signed the broker's " \
        "certificate" in str(misled.error)
    assert (
        "closed the connection without answering the login; if it listens with TLS, set the "
        "relay CA file" in str(plain.error)
    )


async def test_tls_to_a_plain_listener_is_named_and_a_mended_link_is_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Why: a hub set for TLS against a plain listener read only "cannot be reached
    (Connection reset by peer)", and nothing was logged once a failing link was mended."""
    pki = make_pki(tmp_path / "pki")
    plain_broker = secured_broker(tmp_path / "plain")
    try:
        misled = relay(plain_broker.port, username="hub", password="hub-secret",
                       tls=tls_context(pki.ca_cert))
        assert await relay_outcome(misled, plain_broker) == []
    finally:
        plain_broker.kill()
    assert "if it listens without TLS, use its TLS port or unset the relay CA file" in str(
        misled.error)
    # A listener that reads the TLS greeting and hangs up cleanly (not with a reset).
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    try:
        polite = relay(server.sockets[0].getsockname()[1], tls=tls_context(pki.ca_cert))
        task = asyncio.create_task(polite.run(lambda _adv: None))
        for _ in range(500):
            if polite.error is not None:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        server.close()
    assert "use its TLS port or unset the relay CA file" in str(polite.error)
    mended = relay(1883)
    with caplog.at_level("INFO", logger="beacons.sources.mqtt_relay"):
        mended._failed("cannot be reached (Connection refused)")  # a broker restarting
        mended._connected()  # as paho's thread reports it
    assert mended.error is None
    assert "the relay nodes' broker 127.0.0.1:1883 is connected again" in caplog.text


async def test_the_hub_connects_its_relay_source_as_its_config_says(
    tmp_path: Path, services: Services
) -> None:
    """The hub reads the relay password from its file and the CA for TLS, as configured."""
    pki = make_pki(tmp_path / "pki")
    broker = secured_broker(tmp_path / "broker", pki)
    password_file = tmp_path / "relay.password"
    password_file.write_text("hub-secret\n")
    services.config.beacons = services.config.beacons.model_copy(
        update={"source": "mqtt", "relay_port": broker.port, "relay_username": "hub",
                "relay_password_file": password_file, "relay_tls_ca_file": pki.ca_cert}
    )
    source = make_source(services.config.beacons, services)
    assert isinstance(source, MqttRelaySource)
    assert source._nodes is None  # no fleet file: any node is heard
    declared = make_source(services.config.beacons, services,
                           load_fleet(ROOT / "firmware_configs" / "demo-store.yaml"))
    assert isinstance(declared, MqttRelaySource)
    assert declared._nodes == {"aisles", "pickup"}  # "door" is the hub's adapter, not a relay
    assert declared.reorder_s == services.config.beacons.relay_reorder_s == 1.0
    heard = Advertisement(t=services.clock.now() - 1.0, scanner="aisles", address="a", rssi=-70)
    topic = f"retail/v1/{services.config.store.id}/scanners/aisles/adv"
    try:
        assert await relay_outcome(source, broker, pki.ca_cert, topic, heard) == [heard]
    finally:
        broker.kill()


def test_doctor_checks_the_relay_broker_as_the_relay_logs_in(
    tmp_path: Path, services: Services
) -> None:
    """Why: doctor checked only the sync broker, so a relay password or CA that the relay
    nodes' broker refuses was found only when no member was seen arriving."""
    pki = make_pki(tmp_path / "pki")
    broker = secured_broker(tmp_path / "broker", pki)
    password_file = tmp_path / "relay.password"
    password_file.write_text("hub-secret\n")
    relay = {"enabled": True, "chain_prefix": "00112233445566ff", "source": "mqtt",
             "relay_host": "localhost",
             "relay_port": broker.port, "relay_username": "hub",
             "relay_password_file": password_file, "relay_tls_ca_file": pki.ca_cert}
    config = services.config
    try:
        config.beacons = config.beacons.model_copy(update=relay)
        assert [(f.check, f.status, f.detail) for f in check_relay_broker(config)] == [
            ("relay broker", "ok", f"localhost:{broker.port}: TLS verified, login accepted")]
        password_file.write_text("not-the-secret\n")
        (refused,) = check_relay_broker(config)
        assert refused.status == "fail" and "refused the login" in refused.detail
        assert "beacons.relay_password_file" in (refused.fix or "")
        plain = secured_broker(tmp_path / "plain")  # the same users, no TLS
        try:
            config.beacons = config.beacons.model_copy(update={"relay_port": plain.port})
            (hung_up,) = check_relay_broker(config)
        finally:
            plain.kill()
        assert hung_up.status == "fail"
        assert "if it listens without TLS, use its TLS port" in hung_up.detail
        password_file.write_bytes(b"\xff\xfe secret")  # not text
        (unreadable,) = check_relay_broker(config)
        assert unreadable.status == "fail"
        assert unreadable.detail.startswith("cannot read beacons.relay_password_file: ")
        config.beacons = config.beacons.model_copy(update={"enabled": False})
        assert check_relay_broker(config) == []
    finally:
        broker.kill()


def test_relay_lines_match_the_asyncapi_document() -> None:
    """Why: scanner nodes are built to docs/asyncapi.yaml, which had no word on the relay topic;
    a line the document allows must be one the hub reads, and one the hub refuses, refused."""
    doc = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8"))
    channel = doc["channels"]["scannerAdvertisements"]
    assert channel["address"] == relay_topic("{prefix}", "{store}", "{node}")
    schema = doc["components"]["schemas"]["Advertisement"]
    zoned = simulate(Scenario(seed=3, layout="zones", duration_s=600, visits_per_hour=120))
    kinds = set()
    every = {"manufacturer_data", "service_data", "service_uuids"}
    for number, adv in enumerate(zoned.advertisements):
        line = json.loads(encode(adv))
        jsonschema.validate(line, schema)
        kinds |= {k for k in every if line.get(k)}
        if kinds == every and number > 500:
            break
    assert kinds == every, kinds
    good = {"t": 1.0, "scanner": "door", "address": "AA:BB:CC:DD:EE:FF", "rssi": -60,
            "manufacturer_data": {"76": "0215aabb"}, "service_data": {}}
    decode_line(json.dumps(good))
    for bad in ({**good, "rssi": 99}, {k: v for k, v in good.items() if k != "address"},
                {**good, "manufacturer_data": {"apple": "00"}}, {**good, "t": "now"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
        with pytest.raises(TraceError):
            adv = decode_line(json.dumps(bad))
            adv.manufacturer_bytes()
