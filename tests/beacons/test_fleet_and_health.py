"""The fleet declaration (schema, clear errors, rendered payloads) and health from scanning."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest
from click.testing import CliRunner

from beacons.advertisement import Advertisement
from beacons.eid import ephemeral_id
from beacons.errors import FleetError
from beacons.fleet import (
    BeaconSpec,
    Fleet,
    advertising_payload,
    load_fleet,
    render_beacon,
    render_scanner,
)
from beacons.frames import (
    EDDYSTONE_UUID,
    EddystoneETLM,
    EddystoneTLM,
    EddystoneUID,
    EddystoneURL,
    IBeacon,
    advertising_data,
)
from beacons.health import FleetHealth
from hub.beacon_health import BeaconHealthService
from hub.cli import main
from hub.clock import ManualClock, WallSteps
from hub.config.beacons import HealthConfig
from hub.presence import PresenceFigures, PresenceService
from hub.services import Services
from tests.bounded import run_bounded

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "firmware_configs" / "demo-store.yaml"
NOW = 1_767_261_600.0


def test_every_committed_fleet_file_validates() -> None:
    files = sorted((ROOT / "firmware_configs").glob("*.yaml"))
    assert files
    for path in files:
        fleet = load_fleet(path)
        assert fleet.beacons and fleet.scanners


def test_rendered_payloads_follow_the_specs() -> None:
    fleet = load_fleet(DEMO)
    by_id = {b.id: render_beacon(b) for b in fleet.beacons}
    uid_frames = by_id["dairy-uid"]["frames"]
    uid_adv = bytes.fromhex(uid_frames[0]["adv_data"])  # type: ignore[index]
    # flags | 03 03 AA FE | service data length 0x17 (full UID with RFU) | 16 AA FE ...
    assert uid_adv[:7] == bytes.fromhex("0201060303aafe")
    assert uid_adv[7] == 0x17 and uid_adv[8:11] == bytes.fromhex("16aafe")
    tlm_adv = bytes.fromhex(uid_frames[1]["adv_data"])  # type: ignore[index]
    assert tlm_adv[7] == 0x11  # the TLM spec's fixed service data length
    alt = bytes.fromhex(by_id["pickup-altbeacon"]["frames"][0]["adv_data"])  # type: ignore[index]
    assert alt[3:9] == bytes.fromhex("1bff1801beac")  # length 0x1B, type 0xFF, 0x0118, BEAC
    # Eddystone ranging data is the 1 m power + 41 dB.
    assert fleet.beacons[1].tx_power_0m == -62 + 41
    for rendered in by_id.values():
        for frame in rendered["frames"]:  # type: ignore[union-attr]
            assert len(bytes.fromhex(frame["adv_data"])) <= 31


def test_scanner_rendering_names_the_relay_topic() -> None:
    fleet = load_fleet(DEMO)
    relay = render_scanner(fleet.scanners[1], store="demo-store", topic_prefix="retail")
    assert relay["mqtt"]["topic"] == "retail/v1/demo-store/scanners/aisles/adv"  # type: ignore[index]
    own = render_scanner(fleet.scanners[0], store="demo-store", topic_prefix="retail")
    assert own["adapter"] == "hci0" and "mqtt" not in own


def test_render_needs_the_store_id_for_relay_nodes(tmp_path: Path) -> None:
    """Why: without 'store:' the relays were rendered onto retail/v1/store/..., a topic the hub
    never subscribes to."""
    text = DEMO.read_text()
    assert "store:" in text
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("\n".join(line for line in text.splitlines() if not line.startswith("store:")))
    result = CliRunner().invoke(main, ["beacons", "render", str(fleet)])
    assert result.exit_code == 1 and "add 'store: <id>'" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("beacons: [", "not valid YAML (line 1"),
        ("- just a list", "expected a mapping"),
        ("beacons:\n  - {id: a, kind: ibeacon, major: 1, minor: 1}", "needs uuid"),
        (
            "beacons:\n  - {id: a, kind: eddystone-uid, namespace: abcd, instance: '000000000001'}",
            "namespace must be 20 hex",
        ),
        (
            "beacons:\n  - {id: a, kind: eddystone-url, url: 'https://a-very-long-name.example/x'}",
            "at most 17",
        ),
        (
            "beacons:\n  - {id: a, kind: ibeacon, uuid: 7d2a1e0c-5b3f-4c1d-9a7e-2f6b8c4d0e11, "
            "major: 1, minor: 1, colour: red}",
            "beacons.0 (a).colour: Extra inputs",
        ),
        # Why: an unquoted digits-only instance was "Input should be a valid string"
        (
            "beacons:\n  - {id: a, kind: eddystone-uid, namespace: " + "ab" * 10
            + ", instance: 2}",
            "beacons.0 (a).instance: Input should be a valid string (YAML read 2 as a number: "
            "put it in quotes)",
        ),
        (
            "scanners:\n  - {name: a, kind: hub-adapter}\n  - {name: a, kind: esp32-relay}",
            "duplicate scanner names: a",
        ),
        ("scanners:\n  - {name: a, kind: esp32-relay, scan_window_ms: 200}", "scan_window_ms"),
        # an id of another kind (a copied block) would be flashed and matched without it
        (
            "beacons:\n  - {id: a, kind: ibeacon, uuid: 7d2a1e0c-5b3f-4c1d-9a7e-2f6b8c4d0e11, "
            "major: 1, minor: 1, url: 'https://shop.example'}",
            "a ibeacon beacon has no url",
        ),
        # Why: 0 dBm at 1 m made the ranging byte +41 dBm, a frame outside the Eddystone spec
        (
            "beacons:\n  - {id: a, kind: eddystone-uid, namespace: " + "ab" * 10 + ", instance: "
            "'000000000001', measured_power: -10}",
            "ranging data of 31 dBm",
        ),
        # Why: these were taken as major 1 and an infinite position
        (
            "beacons:\n  - {id: a, kind: ibeacon, uuid: 7d2a1e0c-5b3f-4c1d-9a7e-2f6b8c4d0e11, "
            "major: true, minor: 1}",
            "beacons.0 (a).major: Input should be a valid integer",
        ),
        (
            "beacons:\n  - {id: a, kind: ibeacon, uuid: 7d2a1e0c-5b3f-4c1d-9a7e-2f6b8c4d0e11, "
            "major: 1, minor: 2.0}",
            "beacons.0 (a).minor: Input should be a valid integer",
        ),
        (
            "scanners:\n  - {name: a, kind: hub-adapter, position: {x: .inf, y: 1}}",
            "scanners.0 (a).position.x: Input should be a finite number",
        ),
        # Why: these were taken as the number 1.5 and as false (pydantic's lax mode)
        (
            "scanners:\n  - {name: a, kind: hub-adapter, position: {x: '1.5', y: 1}}",
            "scanners.0 (a).position.x: Input should be a valid number (YAML read '1.5' as "
            "text: remove the quotes)",
        ),
        (
            "scanners:\n  - {name: a, kind: esp32-relay, active_scan: 'no'}",
            "scanners.0 (a).active_scan: Input should be a valid boolean (YAML read 'no' as "
            "text: remove the quotes)",
        ),
        (
            "scanners:\n  - {name: a, kind: esp32-relay, active_scan: 1}",
            "scanners.0 (a).active_scan: Input should be a valid boolean",
        ),
        # Why: plain YAML keeps the last of two keys, so this declared no beacons at all.
        ("beacons:\n  - {id: a, kind: eddystone-eid, identity_key: " + "ab" * 16 + "}\n"
         "beacons: []\n", "(line 3, column 1): 'beacons' is given twice"),
    ],
)
def test_fleet_errors_point_at_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    with pytest.raises(FleetError) as caught:
        load_fleet(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_two_beacons_with_one_identity_are_refused() -> None:
    same = {"kind": "ibeacon", "uuid": str(UUID(int=1)), "major": 1, "minor": 1}
    with pytest.raises(ValueError, match="same identity"):
        Fleet.model_validate({"beacons": [{"id": "a", **same}, {"id": "b", **same}]})
    # Two EID beacons with one key advertise the same ids: health saw the second as missing.
    eid = {"kind": "eddystone-eid", "identity_key": "ab" * 16}
    with pytest.raises(ValueError, match="same identity"):
        Fleet.model_validate({"beacons": [{"id": "a", **eid}, {"id": "b", **eid}]})


def test_fleet_files_that_are_not_text_or_far_too_large_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_bytes("beacons: []\nstore: k\xf6k\n".encode("latin-1"))
    with pytest.raises(FleetError, match="fleet.yaml: not UTF-8 text"):
        load_fleet(path)
    path.write_text("beacons:\n" + "  - {id: b, kind: eddystone-eid, identity_key: x}\n" * 30000)
    with pytest.raises(FleetError, match="larger than 1024 KiB"):
        load_fleet(path)


def test_eid_rotates_with_its_period_and_depends_on_the_key() -> None:
    key = bytes(range(16))
    assert ephemeral_id(key, 10, 65_280) == ephemeral_id(key, 10, 65_280 + 1023 - 65_280 % 1024)
    assert ephemeral_id(key, 10, 65_280) != ephemeral_id(key, 10, 65_280 + 1024)
    assert ephemeral_id(key, 10, 65_280) != ephemeral_id(bytes(16), 10, 65_280)
    assert len(ephemeral_id(key, 0, 1)) == 8


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def advert(frame: object, t: float, address: str, rssi: int = -70) -> Advertisement:
    manufacturer, service = advertising_data(frame)  # type: ignore[arg-type]
    return Advertisement(
        t=t,
        scanner="door",
        address=address,
        rssi=rssi,
        manufacturer_data={str(k): v.hex() for k, v in manufacturer.items()},
        service_data={k: v.hex() for k, v in service.items()},
    )


def test_health_tracks_beacons_and_alerts_once_per_change() -> None:
    fleet = load_fleet(DEMO)
    clock = Clock(1_767_261_600.0)
    health = FleetHealth(fleet, clock, missing_after_s=600, battery_low_mv=2500)
    ibeacon = fleet.beacons[0].identity_frame()
    uid = fleet.beacons[1].identity_frame()
    assert isinstance(ibeacon, IBeacon) and isinstance(uid, EddystoneUID)
    health.observe(advert(ibeacon, clock.now, "11:11:11:11:11:11", rssi=-65))
    health.observe(advert(uid, clock.now, "22:22:22:22:22:22"))
    health.observe(advert(EddystoneTLM(2400, 21.5, 10, 3600), clock.now, "22:22:22:22:22:22"))
    # A stranger's TLM (unknown address) and a foreign iBeacon change nothing.
    health.observe(advert(EddystoneTLM(1000, 0.0, 1, 1), clock.now, "99:99:99:99:99:99"))
    health.observe(advert(IBeacon(UUID(int=5), 1, 1, -59), clock.now, "98:98:98:98:98:98"))
    status = health.status
    entrance = status["entrance-ibeacon"]
    assert (entrance.rssi, entrance.last_seen) == (-65, clock.now)
    assert (status["dairy-uid"].battery_mv, status["dairy-uid"].uptime_s) == (2400, 360.0)
    alerts = health.check()
    assert {(a.beacon, a.kind, a.active) for a in alerts} == {("dairy-uid", "battery_low", True)}
    assert health.check() == []  # alerts fire on change only
    clock.now += 601
    health.observe(advert(ibeacon, clock.now, "11:11:11:11:11:11"))
    missing = {(a.beacon, a.kind) for a in health.check() if a.active}
    assert missing == {
        ("dairy-uid", "missing"),
        ("pickup-altbeacon", "missing"),
        ("window-url", "missing"),
        ("stockroom-eid", "missing"),
    }
    health.observe(advert(uid, clock.now, "22:22:22:22:22:22"))
    assert [(a.beacon, a.kind, a.active) for a in health.check()] == [
        ("dairy-uid", "missing", False)
    ]


def test_a_beacon_calibrated_to_another_power_is_still_itself() -> None:
    """Why: beacons were matched by their whole frame, power byte included, so a beacon set to
    -61 dBm at 1 m instead of the declared -59 was reported missing while on the air, and two
    beacons with one identity but different powers passed validation."""
    fleet = load_fleet(DEMO)
    health = FleetHealth(fleet, Clock(NOW), missing_after_s=600, battery_low_mv=2500)
    declared = fleet.beacons[0].identity_frame()
    assert isinstance(declared, IBeacon)
    recalibrated = IBeacon(declared.uuid, declared.major, declared.minor, -61)
    health.observe(advert(recalibrated, NOW, "11:11:11:11:11:11"))
    assert health.status["entrance-ibeacon"].last_seen == NOW
    same = {"kind": "ibeacon", "uuid": str(UUID(int=1)), "major": 1, "minor": 1}
    with pytest.raises(ValueError, match="same identity"):
        Fleet.model_validate(
            {"beacons": [{"id": "a", **same}, {"id": "b", **same, "measured_power": -70}]}
        )


def test_a_low_battery_clears_only_a_margin_above_the_threshold() -> None:
    """Why: a reading wobbling around the threshold (2490 / 2510 mV) alerted and cleared
    dozens of times an hour; and a reading of 0 (no battery figure) cleared a low battery."""
    fleet = load_fleet(DEMO)
    clock = Clock(NOW)
    health = FleetHealth(fleet, clock, missing_after_s=600, battery_low_mv=2500)
    uid = fleet.beacons[1].identity_frame()
    health.observe(advert(uid, NOW, "22:22:22:22:22:22"))
    changes = []
    for battery in (2490, 2510, 2490, 2550, 0, 2590, 2600):
        health.observe(advert(EddystoneTLM(battery, 20.0, 1, 1), NOW, "22:22:22:22:22:22"))
        changes += [(battery, a.active) for a in health.check() if a.kind == "battery_low"]
    assert changes == [(2490, True), (2600, False)]


def test_health_recognises_its_own_eid_beacon() -> None:
    fleet = load_fleet(DEMO)
    clock = Clock(1_767_261_600.0)
    health = FleetHealth(fleet, clock, missing_after_s=600, battery_low_mv=2500)
    spec = fleet.beacons[4]
    eid = ephemeral_id(bytes.fromhex(spec.identity_key or ""), 10, int(clock.now))
    health.observe(advert(spec.identity_frame(eid), clock.now, "33:33:33:33:33:33"))
    health.observe(advert(spec.identity_frame(bytes(8)), clock.now, "44:44:44:44:44:44"))
    assert health.status["stockroom-eid"].last_seen == clock.now


EID_ADDRESS = "33:33:33:33:33:33"


def eid_and_etlm(
    spec: BeaconSpec, beacon_clock: int, tlm: EddystoneTLM, *, key: bytes | None = None
) -> tuple[object, EddystoneETLM]:
    """What an EID beacon whose own counter reads ``beacon_clock`` sends: its id and its
    telemetry sealed under ``key`` (its declared identity key unless another is given)."""
    declared = bytes.fromhex(spec.identity_key or "")
    eid = spec.identity_frame(ephemeral_id(declared, spec.rotation_exponent, beacon_clock))
    sealed = EddystoneETLM.seal(
        tlm, key or declared, spec.rotation_exponent, beacon_clock, salt=b"\x5a\x17"
    )
    return eid, sealed


@pytest.mark.parametrize(
    ("ahead_s", "etlm_after_s"),
    [
        (0, 2),  # in step with the hub, telemetry in the id's rotation period
        (700, 2),  # the beacon's clock 700 s ahead: its period is not the hub's
        (-1000, 2),
        (1024 - 416 - 3, 10),  # id heard 3 s before the beacon rotates; telemetry after it
    ],
)
def test_an_eid_beacons_encrypted_telemetry_gives_its_battery(
    ahead_s: int, etlm_after_s: int
) -> None:
    """Why: ETLM was refused as "encrypted", so an EID beacon's battery was never known and a
    flat one was only noticed once it had gone missing."""
    fleet = load_fleet(DEMO)
    health = FleetHealth(fleet, Clock(NOW), missing_after_s=600, battery_low_mv=2500)
    spec = fleet.beacons[4]
    assert spec.kind == "eddystone-eid" and int(NOW) % 1024 == 416
    beacon_clock = int(NOW) + ahead_s
    eid, _ = eid_and_etlm(spec, beacon_clock, EddystoneTLM(0, None, 0, 0))
    _, etlm = eid_and_etlm(
        spec, beacon_clock + etlm_after_s, EddystoneTLM(2300, 19.5, 50, 36000)
    )
    health.observe(advert(eid, NOW, EID_ADDRESS))
    health.observe(advert(etlm, NOW + etlm_after_s, EID_ADDRESS))
    status = health.status["stockroom-eid"]
    assert (status.battery_mv, status.temperature_c, status.uptime_s) == (2300, 19.5, 3600.0)
    assert [(a.beacon, a.kind, a.active) for a in health.check(NOW + etlm_after_s)] == [
        ("stockroom-eid", "battery_low", True)
    ]
    assert health.etlm_rejected == {}


def test_encrypted_telemetry_that_does_not_authenticate_is_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fleet = load_fleet(DEMO)
    health = FleetHealth(fleet, Clock(NOW), missing_after_s=600, battery_low_mv=2500)
    spec = fleet.beacons[4]
    eid, forged = eid_and_etlm(spec, int(NOW), EddystoneTLM(1000, 20.0, 1, 1), key=bytes(16))
    _, genuine = eid_and_etlm(spec, int(NOW), EddystoneTLM(3000, 20.0, 1, 1))
    damaged = EddystoneETLM(genuine.ciphertext, genuine.salt, bytes([genuine.mic[0] ^ 1]) + b"?")
    uid = fleet.beacons[1].identity_frame()
    with caplog.at_level("WARNING", logger="beacons.health"):
        health.observe(advert(eid, NOW, EID_ADDRESS))
        for frame in (forged, damaged, forged):
            health.observe(advert(frame, NOW + 1, EID_ADDRESS))
        # a stranger's ETLM is not the store's business; a UID beacon has no key to open one
        health.observe(advert(forged, NOW + 1, "99:99:99:99:99:99"))
        health.observe(advert(uid, NOW, "22:22:22:22:22:22"))
        health.observe(advert(forged, NOW + 1, "22:22:22:22:22:22"))
    assert health.status["stockroom-eid"].battery_mv is None
    assert health.etlm_rejected == {"stockroom-eid": 3, "dairy-uid": 1}
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "stockroom-eid" in messages[0] and "declared identity_key" in messages[0]
    assert "dairy-uid" in messages[1] and "declared as eddystone-uid" in messages[1]
    health.observe(advert(genuine, NOW + 2, EID_ADDRESS))
    assert health.status["stockroom-eid"].battery_mv == 3000


def test_the_hub_alerts_on_an_eid_beacons_low_battery_and_counts_forged_telemetry(
    services: Services, tmp_path: Path
) -> None:
    services.config.beacons = services.config.beacons.model_copy(
        update={"enabled": True, "source": "replay", "replay_file": tmp_path / "t.jsonl",
                "fleet_file": DEMO, "chain_prefix": "00" * 8}
    )
    presence = PresenceService(services)
    assert presence.health is not None
    services.presence = presence
    spec = load_fleet(DEMO).beacons[4]
    t = services.clock.now()
    eid, low = eid_and_etlm(spec, int(t), EddystoneTLM(2100, 18.0, 9, 99))
    _, forged = eid_and_etlm(spec, int(t), EddystoneTLM(3000, 18.0, 9, 99), key=bytes(16))
    for frame, after in ((eid, 0), (low, 1), (forged, 2)):
        presence.on_advertisement(advert(frame, t + after, EID_ADDRESS))
    presence.health.check()
    alerts = services.db.query("SELECT beacon_id, kind, active, detail FROM beacon_alerts")
    assert alerts == [{"beacon_id": "stockroom-eid", "kind": "battery_low", "active": 1,
                       "detail": '{"battery_mv": 2100}'}]
    services.metrics.registry.register(PresenceFigures(services))
    figures = services.metrics.render().decode()
    assert 'hub_beacon_etlm_rejected_total{beacon="stockroom-eid"} 1.0' in figures


def test_render_says_eid_beacons_may_send_encrypted_telemetry() -> None:
    fleet = load_fleet(DEMO)
    rendered = {b.id: render_beacon(b) for b in fleet.beacons}
    eid_telemetry = rendered["stockroom-eid"]["frames"][1]  # type: ignore[index]
    assert eid_telemetry["frame"] == "eddystone-etlm"
    assert "encrypted" in eid_telemetry["note"] and "identity key" in eid_telemetry["note"]
    payload = bytes.fromhex(eid_telemetry["service_data"][EDDYSTONE_UUID])
    assert payload[:2] == b"\x20\x01" and len(payload) == 18
    assert rendered["dairy-uid"]["frames"][1]["frame"] == "eddystone-tlm"  # type: ignore[index]


def test_the_longest_url_fills_one_advertisement_exactly() -> None:
    longest = EddystoneURL(-18, "https://abcdefghijklmnopq")  # 17 body bytes
    assert len(advertising_payload(longest)) == 31


def test_a_restart_keeps_what_health_knew(services: Services, clock: ManualClock) -> None:
    """Why: after a restart a beacon still missing was stored as "OK" with no last sighting,
    its return sent no "cleared" (the shop's alert stayed active for good), and staying away
    sent a second "missing" that had lost when it was last heard."""
    fleet = load_fleet(DEMO)
    config = HealthConfig(missing_after_s=600)

    def start() -> BeaconHealthService:
        return BeaconHealthService(services.db, clock, None, fleet, config)

    entrance = fleet.beacons[0].identity_frame()
    first = start()
    first.observe(advert(entrance, clock.now(), "11:11:11:11:11:11"))
    seen_at = clock.now()
    first.check()
    clock.advance(601)
    assert {(a.beacon, a.active) for a in first.check() if a.kind == "missing"} >= {
        ("entrance-ibeacon", True)
    }

    again = start()  # the hub restarted
    clock.advance(60)
    assert again.check() == []
    assert again.snapshot()["beacons"][0]["last_seen"] == seen_at
    again.observe(advert(entrance, clock.now(), "11:11:11:11:11:11"))
    assert [(a.beacon, a.kind, a.active) for a in again.check()] == [
        ("entrance-ibeacon", "missing", False)
    ]


def test_health_follows_the_clock_when_ntp_sets_it(services: Services, clock: ManualClock) -> None:
    """Why: set 3 days forward (a Pi without a battery clock, network back), every beacon not
    heard since the step was reported missing; set back, a beacon that then died was last
    "heard" in the future and would not be missed until the clock caught up."""
    fleet = load_fleet(DEMO)
    health = BeaconHealthService(services.db, clock, None, fleet,
                                 HealthConfig(missing_after_s=600), wall_step=WallSteps(clock))
    beacons = {spec.id: spec.identity_frame() for spec in fleet.beacons
               if spec.kind != "eddystone-eid"}

    def heard() -> None:
        for n, frame in enumerate(beacons.values()):
            health.observe(advert(frame, clock.now(), f"11:11:11:11:11:{n:02x}"))

    heard()
    health.check()
    clock.advance(30)
    clock.step(3 * 86_400)
    assert health.check() == []
    assert all(clock.now() - 31 <= b["last_seen"] <= clock.now()
               for b in health.snapshot()["beacons"] if b["id"] in beacons)
    heard()
    clock.step(-365 * 86_400)
    clock.advance(601)  # and then silence
    assert {a.beacon for a in health.check() if a.kind == "missing" and a.active} >= set(beacons)


def test_a_sighting_from_before_a_power_cut_is_not_moved_by_ntp(
        services: Services, clock: ManualClock) -> None:
    """Why (review): health moved every kept sighting by NTP's step, the last run's too; after
    a power cut of three days a beacon that died meanwhile looked heard just now."""
    fleet = load_fleet(DEMO)
    config = HealthConfig(missing_after_s=600)
    before = BeaconHealthService(services.db, clock, None, fleet, config)
    entrance = fleet.beacons[0].identity_frame()
    before.observe(advert(entrance, clock.now(), "11:11:11:11:11:11"))
    heard_at = clock.now()
    before.check()
    # three days without power; the Pi starts at the time it last saved, NTP then sets it
    clock.advance(60)
    after = BeaconHealthService(services.db, clock, None, fleet, config,
                                wall_step=WallSteps(clock))
    assert after.check() == []
    clock.step(3 * 86_400)
    alerts = after.check()
    assert ("entrance-ibeacon", True) in {(a.beacon, a.active) for a in alerts
                                          if a.kind == "missing"}
    assert after.snapshot()["beacons"][0]["last_seen"] == heard_at


def test_a_flat_out_replay_judges_health_on_the_trace_time(
    services: Services, tmp_path: Path
) -> None:
    """Why: presence ran on the trace's own time and health on the wall clock, so every beacon
    of a recording replayed with `retail-hub run` was missing at the first check."""
    services.config.beacons = services.config.beacons.model_copy(
        update={"enabled": True, "source": "replay", "replay_file": tmp_path / "t.jsonl",
                "fleet_file": DEMO, "chain_prefix": "00" * 8}
    )
    presence = PresenceService(services)
    assert presence.health is not None
    recorded = services.clock.now() - 30 * 86400  # a recording made a month ago
    entrance = load_fleet(DEMO).beacons[0].identity_frame()
    presence.on_advertisement(advert(entrance, recorded, "11:11:11:11:11:11"))
    assert presence.health.check() == []
    presence.on_advertisement(advert(entrance, recorded + 1000, "11:11:11:11:11:11"))
    assert {a.beacon for a in presence.health.check()} == {
        "dairy-uid", "pickup-altbeacon", "window-url", "stockroom-eid"
    }


ZONED_FLEET = """\
store: s1
beacons:
  - {id: door-beacon, kind: ibeacon, uuid: 7d2a1e0c-5b3f-4c1d-9a7e-2f6b8c4d0e11, major: 1,
     minor: 1, zone: entrance}
  - {id: stock-beacon, kind: ibeacon, uuid: 7d2a1e0c-5b3f-4c1d-9a7e-2f6b8c4d0e11, major: 1,
     minor: 2, zone: %s}
scanners:
  - {name: door, kind: hub-adapter, zone: entrance}
  - {name: pickup, kind: esp32-relay}
"""


def test_validate_refuses_a_beacon_in_a_zone_no_scanner_covers(tmp_path: Path) -> None:
    """Why: a beacon declared in a zone no scanner covers (a typo, a scanner left out of the
    file) passed, and fleet health could then report it missing while it was on the air."""
    path = tmp_path / "fleet.yaml"
    path.write_text(ZONED_FLEET % "stockrom")
    result = CliRunner().invoke(main, ["beacons", "validate", str(DEMO), str(path)])
    assert result.exit_code == 1
    assert f"{DEMO}: ok (5 beacons, 3 scanners)" in result.stdout
    assert (
        f"error: {path}: 1 problem(s):\n  beacons.1 (stock-beacon).zone: no scanner covers zone "
        "'stockrom' (scanners cover: entrance, pickup)" in result.stderr
    )
    assert "correct its zone or declare the scanner of 'stockrom'" in result.stderr


def test_validate_checks_every_file_and_zones_only_against_declared_scanners(
    tmp_path: Path,
) -> None:
    """Why: validate stopped at the first bad file, so the files after it were never checked,
    and a fleet that declares no scanners (the hub's own adapter, set in its config) had every
    zoned beacon refused ("scanners cover: none")."""
    typo, beacons_only = tmp_path / "typo.yaml", tmp_path / "beacons-only.yaml"
    typo.write_text(ZONED_FLEET % "stockrom")
    beacons_only.write_text((ZONED_FLEET % "stockroom").split("scanners:")[0])
    result = CliRunner().invoke(main, ["beacons", "validate", str(typo), str(beacons_only),
                                       str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1
    assert (f"{beacons_only}: ok (2 beacons, 0 scanners); zones not checked: it declares no "
            "scanners") in result.stdout
    assert f"error: {typo}: 1 problem(s)" in result.stderr
    assert "missing.yaml" in result.stderr
    assert result.stderr.endswith("error: 2 of 3 fleet file(s) have problems (above)\n")


def test_validate_takes_a_folder_of_fleet_files(tmp_path: Path) -> None:
    """Why: 'beacons validate firmware_configs' was refused with click's usage error."""
    result = CliRunner().invoke(main, ["beacons", "validate", str(ROOT / "firmware_configs")])
    assert result.exit_code == 0, result.output
    assert f"{DEMO}: ok" in result.stdout
    (tmp_path / "notes.txt").write_text("not a fleet")
    result = CliRunner().invoke(main, ["beacons", "validate", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{tmp_path} holds no fleet files (*.yaml, *.yml)" in result.stderr


def test_validate_warns_of_a_scanner_whose_zone_has_no_beacon(tmp_path: Path) -> None:
    """A scanner's zone defaults to its name; presence needs no beacon there, so this passes."""
    path = tmp_path / "fleet.yaml"
    path.write_text(ZONED_FLEET % "entrance")
    result = CliRunner().invoke(main, ["beacons", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{path}: ok (2 beacons, 2 scanners)" in result.stdout
    assert result.stderr == (
        f"warning: {path}: scanners.1 (pickup).zone: no beacon is declared in zone 'pickup' "
        "(beacons are in: entrance); presence works without one, but no store beacon there "
        "shows that this scanner hears\n"
    )
    demo = CliRunner().invoke(main, ["beacons", "validate", str(DEMO)])
    assert demo.exit_code == 0 and demo.stderr == ""


def test_a_rotating_eid_beacon_leaves_a_bounded_number_of_addresses() -> None:
    """Why: every address a beacon was heard from was kept for good; an EID beacon rotating its
    address every ~15 minutes left ~35,000 a year each. Its telemetry still finds it from the
    address it sends from now."""
    fleet = load_fleet(DEMO)
    spec = fleet.beacons[4]
    clock = Clock(NOW)
    health = FleetHealth(fleet, clock, missing_after_s=600, battery_low_mv=2500)
    period = 1 << spec.rotation_exponent
    first = "40:00:00:00:00:00"
    for turn in range(500):  # five and a half days of rotations
        clock.now = NOW + turn * period
        eid, _ = eid_and_etlm(spec, int(clock.now), EddystoneTLM(0, None, 0, 0))
        health.observe(advert(eid, clock.now, f"40:00:00:00:{turn // 256:02x}:{turn % 256:02x}"))
    assert len(health._addresses) <= 4
    assert health.status["stockroom-eid"].last_seen == clock.now
    latest = f"40:00:00:00:{499 // 256:02x}:{499 % 256:02x}"
    tlm = EddystoneTLM(2400, 20.0, 1, 1)
    health.observe(advert(tlm, clock.now + 1, first))  # an address long forgotten: ignored
    assert health.status["stockroom-eid"].battery_mv is None
    health.observe(advert(tlm, clock.now + 1, latest))
    assert health.status["stockroom-eid"].battery_mv == 2400


def test_an_endless_or_deeply_nested_fleet_file_is_refused(tmp_path: Path) -> None:
    """Why: the size check used stat() (0 for /dev/zero, which validate then read until the
    kernel killed it), and 20 KB of "[[[[..." ended validate with a RecursionError traceback."""
    result = run_bounded(["beacons", "validate", "/dev/zero"], tmp_path)
    assert result.returncode == 1, result.stderr
    assert "error: /dev/zero: larger than 1024 KiB; is it a fleet file?" in result.stderr
    assert "Traceback" not in result.stderr
    deep = tmp_path / "deep.yaml"
    deep.write_text("beacons: " + "[" * 20000 + "]" * 20000 + "\n")
    with pytest.raises(FleetError, match=r"deep\.yaml: nested too deeply: not a fleet file"):
        load_fleet(deep)


@pytest.mark.parametrize("prefix", ["a/#/+", "x/y", "Retail", "", "a b"])
def test_render_takes_only_a_topic_prefix_the_hub_would(tmp_path: Path, prefix: str) -> None:
    """Why: render put 'a/#/+' into a relay node's publish topic, which no broker takes, while
    config check refuses it as mqtt.topic_prefix."""
    fleet = ROOT / "firmware_configs" / "demo-store.yaml"
    result = CliRunner().invoke(main, ["beacons", "render", str(fleet), "--topic-prefix", prefix])
    assert result.exit_code == 2
    assert f"{prefix!r} is not one topic level" in result.output
