"""Integration: a replayed trace through the hub's presence service. A member with a ready order
walks in past a window-shopper and strangers; exactly one reminder and one staff alert come out,
recorded, in the outbox and on the staff feed. Also the contract commands on the CLI."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from beacons.advertisement import Advertisement
from beacons.errors import ScannerUnavailableError
from beacons.presence import PresenceEvent
from beacons.settings import PresenceSettings
from beacons.simulator import Scenario, simulate
from beacons.sources.simulated import SimulatedSource
from beacons.tokens import token_uuid, window_of
from beacons.trace import write_trace
from hub.cli import main
from hub.clock import ManualClock
from hub.config import HubConfig
from hub.members import MemberIn
from hub.orders import OrderIn, OrderLineIn
from hub.presence import (
    PRESENCE,
    RECORD_RETRY_FOR_S,
    RECORD_RETRY_S,
    PresenceFigures,
    PresenceService,
)
from hub.reminders import REMINDER, STAFF_ALERT
from hub.services import Services, build_services

REPO = Path(__file__).resolve().parents[2]

PREFIX = "52455441494c4842"
WALKER_KEY = "00112233445566778899aabbccddeeff"
LINGER_KEY = "ffeeddccbbaa99887766554433221100"
NOON = 1_767_268_800.0  # 2026-01-01 12:00 UTC, outside quiet hours
START = NOON + 60


def walk_in() -> list[tuple[float, int]]:
    """Approach on the pavement, pass the scanner, walk on inside, browse."""
    approach = [(i * 0.5, -90 + i * 2) for i in range(15)]  # to -62 at 7 s
    past = [(7.5, -58), (8.0, -57), (8.5, -58), (9.0, -60)]
    inside = [(9.5 + i * 0.5, -66 - 2 * i) for i in range(9)]  # down to -82
    browse = [(14.0 + i, -82 + (i % 3)) for i in range(90)]
    return approach + past + inside + browse


def linger() -> list[tuple[float, int]]:
    """A window-shopper in the doorway for two minutes, then off along the pavement."""
    arrive = [(i * 0.5, -90 + i * 3) for i in range(10)]  # to -63
    stand = [
        (5 + i * 0.5, -60 + (2 if i % 2 else -2) - (14 if i % 4 == 3 else 0)) for i in range(240)
    ]
    leave = [(125 + i * 0.5, -66 - 3 * i) for i in range(9)]
    return arrive + stand + leave


def advert(t: float, key: str, rssi: int, address: str) -> Advertisement:
    uuid = token_uuid(bytes.fromhex(PREFIX), bytes.fromhex(key), window_of(t))
    return Advertisement(
        t=round(t, 3), scanner="door", address=address, rssi=rssi, service_uuids=[uuid]
    )


def write_store_trace(path: Path) -> None:
    rows = [advert(START + 30 + t, WALKER_KEY, r, "5A:00:00:00:00:01") for t, r in walk_in()]
    rows += [advert(START + t, LINGER_KEY, r, "6B:00:00:00:00:02") for t, r in linger()]
    rows += [advert(START + t, "0f" * 16, -55, "7C:00:00:00:00:03") for t in range(0, 120, 2)]
    rows += [
        Advertisement(
            t=START + t,
            scanner="door",
            address="7D:00:00:00:00:04",
            rssi=-50,
            manufacturer_data={"76": "1005031c"},
        )
        for t in range(0, 120, 3)
    ]
    write_trace(path, sorted(rows, key=lambda a: a.t))


def replaying_hub(
    tmp_path: Path, make_config: Callable[..., HubConfig], catalog_rows: list
) -> Services:
    """Services (features not started) whose beacons replay the store trace, with the small
    catalogue imported; the caller closes them."""
    trace = tmp_path / "store.jsonl"
    write_store_trace(trace)
    config = make_config(
        beacons={
            "enabled": True,
            "source": "replay",
            "chain_prefix": PREFIX,
            "replay_file": str(trace),
        }
    )
    svc = build_services(config, ManualClock(NOON), with_features=False)
    assert not svc.catalog.import_rows(catalog_rows, tmp_path).rejected
    return svc


def ready_orders(svc: Services) -> None:
    """The walker and the lingerer opted in, each with an order ready for pickup."""
    for member, key in (("walker", WALKER_KEY), ("lingerer", LINGER_KEY)):
        svc.members.upsert(MemberIn(id=member, consent=True, beacon_key=key))
        svc.orders.place(
            OrderIn(id=f"order-{member}", member=member, lines=[OrderLineIn(sku="OAT-1", qty=1)])
        )
        if svc.orders.get(f"order-{member}").state == "pending":
            svc.orders.accept(f"order-{member}")
        svc.orders.mark_ready(f"order-{member}")


async def writer_connection(svc: Services) -> sqlite3.Connection:
    """The database writer's own connection: ``PRAGMA query_only`` on it makes every write
    fail with SQLite's OperationalError, as on a card gone read-only (set from the test's
    thread: the writer cannot begin a transaction to take it back)."""
    conn: sqlite3.Connection = await svc.db.write(lambda: svc.db.conn().conn)
    return conn


@pytest.mark.parametrize("refused_s", [2 * RECORD_RETRY_S, RECORD_RETRY_FOR_S + RECORD_RETRY_S],
                         ids=["for-10-s", "past-10-min"])
async def test_an_arrival_the_card_refuses_for_a_while_still_reminds(
    tmp_path: Path, make_config: Callable[..., HubConfig], catalog_rows: list, refused_s: float
) -> None:
    """Why: a presence event the database refused (a full or read-only card) was dropped: a
    member with an order ready walked in, and neither she nor the staff heard of it. It is
    tried again, the events after it waiting in order, for up to 10 minutes; then let go and
    counted."""
    svc = replaying_hub(tmp_path, make_config, catalog_rows)
    assert isinstance(svc.clock, ManualClock)
    try:
        ready_orders(svc)
        writer = await writer_connection(svc)
        writer.execute("PRAGMA query_only = 1")
        presence = PresenceService(svc)
        await presence.start()
        settled = asyncio.create_task(presence.settled())
        waited = 0.0
        while waited < refused_s:
            await asyncio.sleep(0.02)  # the try under way fails and sleeps on the clock
            svc.clock.advance(RECORD_RETRY_S)
            waited += RECORD_RETRY_S
        writer.execute("PRAGMA query_only = 0")
        while not settled.done():
            await asyncio.sleep(0.02)
            svc.clock.advance(RECORD_RETRY_S)
        await presence.stop()
        arrivals = svc.db.query("SELECT member_id FROM presence_events WHERE event = 'arrived'")
        reminded = svc.db.query("SELECT kind, member_id FROM reminders ORDER BY kind")
        if refused_s <= RECORD_RETRY_FOR_S:
            assert arrivals == [{"member_id": "walker"}]
            assert reminded == [{"kind": "member", "member_id": "walker"},
                                {"kind": "staff", "member_id": "walker"}]
            assert presence.records_let_go == 0
        else:  # let go, and counted where the operator looks
            assert arrivals == [] and reminded == [] and presence.records_let_go == 1
            svc.presence = presence
            svc.metrics.registry.register(PresenceFigures(svc))
            assert "hub_presence_unrecorded_total 1.0" in svc.metrics.render().decode()
    finally:
        svc.close()


async def test_a_replayed_walk_in_gives_exactly_one_reminder_and_one_staff_alert(
    tmp_path: Path,
    make_config: Callable[..., HubConfig],
    catalog_rows: list,
) -> None:
    svc = replaying_hub(tmp_path, make_config, catalog_rows)
    try:
        ready_orders(svc)
        feed = svc.bus.subscribe([PRESENCE, REMINDER, STAFF_ALERT])
        presence = PresenceService(svc)
        await presence.start()
        await asyncio.wait_for(presence.settled(), timeout=60)
        await presence.stop()
        assert presence.source_error is None
        reminders = svc.db.query("SELECT order_id, member_id, kind, status FROM reminders")
        assert sorted((r["kind"], r["member_id"], r["status"]) for r in reminders) == [
            ("member", "walker", "sent"),
            ("staff", "walker", "sent"),
        ]
        outbox = svc.db.query("SELECT data FROM outbox WHERE type = 'reminder'")
        assert [json.loads(r["data"])["member"] for r in outbox] == ["walker"]
        arrivals = svc.db.query(
            "SELECT member_id, zone FROM presence_events WHERE event = 'arrived'"
        )
        assert arrivals == [{"member_id": "walker", "zone": "door"}]
        seen = []
        while not feed.queue.empty():
            seen.append(feed.queue.get_nowait().type)
        assert sorted(seen) == sorted([PRESENCE, STAFF_ALERT, REMINDER])
        # what /metrics says of it: every line of the trace, the members' resolved, and a
        # replay that has ended is no longer a working source
        svc.presence = presence
        svc.metrics.registry.register(PresenceFigures(svc))
        figures = svc.metrics.render().decode()
        lines = len((tmp_path / "store.jsonl").read_text().splitlines())
        assert f"hub_presence_advertisements_total {float(lines)}" in figures
        resolved = presence.pipeline.resolved
        assert 0 < resolved < lines and f"hub_presence_resolved_total {float(resolved)}" in figures
        assert "hub_presence_source_ok 0.0" in figures
        # and every family the hub serves is in docs/metrics.md, so a new figure comes with
        # a line saying what it means
        documented = (REPO / "docs" / "metrics.md").read_text()
        families = re.findall(r"^# TYPE (\S+) ", figures, flags=re.MULTILINE)
        assert "hub_presence_key_reloads_total" in families
        undocumented = [name for name in families
                        if not name.endswith("_created") and f"`{name}`" not in documented]
        assert undocumented == []
    finally:
        svc.close()


async def test_an_order_made_ready_while_its_member_is_inside_is_reminded_once(
    tmp_path: Path,
    make_config: Callable[..., HubConfig],
    catalog_rows: list,
) -> None:
    """Why: the rules ran only on "arrived", so an order staff finished while its member was
    already shopping gave no reminder and no staff alert until the member came back."""
    svc = replaying_hub(tmp_path, make_config, catalog_rows)
    try:
        svc.members.upsert(MemberIn(id="walker", consent=True, beacon_key=WALKER_KEY))
        svc.orders.place(
            OrderIn(id="late", member="walker", lines=[OrderLineIn(sku="OAT-1", qty=1)])
        )
        if svc.orders.get("late").state == "pending":
            svc.orders.accept("late")
        presence = PresenceService(svc)
        await presence.start()
        await asyncio.wait_for(presence.settled(), timeout=60)
        assert [v.member for v in presence.present()] == ["walker"]
        assert svc.db.query("SELECT * FROM reminders") == []  # nothing ready at the door
        svc.orders.mark_ready("late")
        for _ in range(100):
            rows = svc.db.query("SELECT order_id, kind, status FROM reminders ORDER BY kind")
            if len(rows) == 2:
                break
            await asyncio.sleep(0.05)
        # the order's next status change (collected) reminds no one again
        svc.orders.collect("late")
        await asyncio.sleep(0.3)
        await presence.stop()
        rows = svc.db.query("SELECT order_id, kind, status FROM reminders ORDER BY kind")
        assert [(r["order_id"], r["kind"], r["status"]) for r in rows] == [
            ("late", "member", "sent"),
            ("late", "staff", "sent"),
        ]
    finally:
        svc.close()


def test_replay_command_prints_contract_events(tmp_path: Path) -> None:
    trace = tmp_path / "store.jsonl"
    write_store_trace(trace)
    members = tmp_path / "members.json"
    members.write_text(
        json.dumps(
            {
                "chain_prefix": PREFIX,
                "members": [
                    {"id": "walker", "key": WALKER_KEY},
                    {"id": "lingerer", "key": LINGER_KEY},
                ],
            }
        )
    )
    result = CliRunner().invoke(main, ["beacons", "replay", str(trace), "--members", str(members)])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["member"], e["event"], e["zone"]) for e in events] == [("walker", "arrived", "door")]
    assert set(events[0]) == {"t", "member", "event", "zone"}
    # the walk-in at 9-14 s into the walk, announced once still heard confirm_s later
    confirm = PresenceSettings().confirm_s
    assert START + 30 + 9 + confirm <= events[0]["t"] <= START + 30 + 14 + confirm + 1


def test_replay_command_reports_a_bad_trace_line(tmp_path: Path) -> None:
    trace = tmp_path / "bad.jsonl"
    trace.write_text('{"t": 1.0, "scanner": "door"}\n')
    members = tmp_path / "members.json"
    members.write_text(json.dumps({"chain_prefix": PREFIX, "members": []}))
    result = CliRunner().invoke(main, ["beacons", "replay", str(trace), "--members", str(members)])
    assert result.exit_code == 1
    assert f"{trace}:1:" in result.output and "address" in result.output


def test_replay_says_when_nothing_was_heard_or_no_member_was(tmp_path: Path) -> None:
    """Why: an empty trace, or one whose tokens are of other keys or another chain, printed no
    events and no word, which reads as "no member came"."""
    members = tmp_path / "members.json"
    members.write_text(json.dumps({"chain_prefix": PREFIX,
                                   "members": [{"id": "other", "key": "ab" * 16}]}))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    result = CliRunner().invoke(main, ["beacons", "replay", str(empty), "--members", str(members)])
    assert result.exit_code == 0 and result.stdout == ""
    assert f"warning: {empty} holds no advertisements" in result.stderr
    trace = tmp_path / "store.jsonl"
    write_store_trace(trace)
    result = CliRunner().invoke(main, ["beacons", "replay", str(trace), "--members", str(members)])
    assert result.exit_code == 0 and result.stdout == ""
    assert re.search(rf"none of the \d+ advertisements in {re.escape(str(trace))} is a token",
                     result.stderr), result.stderr


def test_replay_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """Why: ``replay | head -1`` ended with "error: output: Broken pipe" and exit 1, as if the
    trace were at fault."""
    trace = tmp_path / "store.jsonl"
    write_store_trace(trace)
    members = tmp_path / "members.json"
    members.write_text(
        json.dumps({"chain_prefix": PREFIX, "members": [{"id": "walker", "key": WALKER_KEY}]})
    )
    command = [sys.executable, "-m", "hub.cli", "beacons", "replay", str(trace)]
    process = subprocess.Popen(
        [*command, "--members", str(members)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the first event is written
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 141
    assert stderr == b""


def test_replay_command_warns_about_a_trace_out_of_time_order(tmp_path: Path) -> None:
    """Why: the engine's clock is the newest time seen, so a shuffled or reversed trace gave no
    events or wrong ones, and nothing said so."""
    trace = tmp_path / "store.jsonl"
    write_store_trace(trace)
    lines = trace.read_text().splitlines()
    half = len(lines) // 2
    trace.write_text("\n".join(lines[half:] + lines[:half]) + "\n")
    members = tmp_path / "members.json"
    members.write_text(
        json.dumps({"chain_prefix": PREFIX, "members": [{"id": "walker", "key": WALKER_KEY}]})
    )
    result = CliRunner().invoke(main, ["beacons", "replay", str(trace), "--members", str(members)])
    assert result.exit_code == 0
    assert f"{trace}:{len(lines) - half + 1}: " in result.stderr
    assert "sort the trace by t" in result.stderr


def test_simulate_checks_its_options_and_folders_before_simulating(tmp_path: Path) -> None:
    """Why: a missing output folder gave a traceback after the whole simulation had run, and
    bad options printed pydantic's text with internal names (duration_s)."""
    runner = CliRunner()
    missing = tmp_path / "no" / "trace.jsonl"
    result = runner.invoke(
        main, ["beacons", "simulate", "--out", str(missing), "--truth", str(tmp_path / "t.jsonl")]
    )
    assert result.exit_code == 1 and f"folder {missing.parent} does not exist" in result.output
    result = runner.invoke(
        main,
        [
            "beacons",
            "simulate",
            "--out",
            str(tmp_path / "a.jsonl"),
            "--truth",
            str(tmp_path / "t.jsonl"),
            "--duration",
            "10",
        ],
    )
    assert result.exit_code == 2 and "'--duration': 10.0 is not in the range" in result.output
    assert "duration_s" not in result.output


def test_simulate_refuses_what_it_cannot_honour_and_says_when_nothing_visited(
    tmp_path: Path,
) -> None:
    """Why: --duration 61 and --seed -1 (and --visits-per-hour inf) ended in numpy tracebacks,
    --duration nan was told it is over a week, a short run wrote a trace
    with no visits without a word, and --out and --truth naming one file kept only the truth."""
    runner = CliRunner()
    out, truth = str(tmp_path / "a.jsonl"), str(tmp_path / "t.jsonl")

    def simulate_with(*args: str) -> tuple[int, str]:
        result = runner.invoke(main, ["beacons", "simulate", *args])
        return result.exit_code, result.output

    for args in (("--duration", "61"), ("--duration", "100"), ("--seed", "-1")):
        code, output = simulate_with("--out", out, "--truth", truth, *args)
        assert code == 2 and "is not in the range" in output and "Traceback" not in output
    code, output = simulate_with("--out", out, "--truth", truth, "--duration", "nan")
    assert code == 2 and "'nan' is not a finite number" in output
    for args, why in (
        (("--visits-per-hour", "inf"), "--visits-per-hour: Input should be a finite number"),
        (("--passers-per-hour", "1e9"), "--passers-per-hour: Input should be less than or equal"),
    ):
        code, output = simulate_with("--out", out, "--truth", truth, *args)
        assert code == 1 and why in output and "Traceback" not in output, output
    code, output = simulate_with("--help")
    assert "1200 (visits start until 900 s before the end)" in " ".join(output.split())
    code, output = simulate_with("--out", out, "--truth", out)
    assert (code, output.strip()) == (
        1,
        f"error: --truth and --out name the same file, {out}: give each its own",
    )
    code, output = simulate_with("--out", out, "--truth", truth, "--members", out)
    assert code == 1 and "--members and --out name the same file" in output
    code, output = simulate_with(
        "--out", out, "--truth", truth, "--duration", "1200", "--visits-per-hour", "0",
        "--passers-per-hour", "10", "--non-members-per-hour", "0", "--store-beacons", "0",
    )
    assert code == 0 and "warning: the run has no visits" in output, output


def test_replay_command_warns_about_scanners_it_was_not_told_about(tmp_path: Path) -> None:
    trace = tmp_path / "store.jsonl"
    write_store_trace(trace)
    trace.write_text(trace.read_text().replace('"scanner":"door"', '"scanner":"front"'))
    members = tmp_path / "members.json"
    members.write_text(
        json.dumps({"chain_prefix": PREFIX, "members": [{"id": "walker", "key": WALKER_KEY}]})
    )
    result = CliRunner().invoke(main, ["beacons", "replay", str(trace), "--members", str(members)])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "scanners not in the config: front (" in result.stderr


def test_replay_command_uses_the_scanners_of_a_config_file(tmp_path: Path) -> None:
    trace = tmp_path / "store.jsonl"
    write_store_trace(trace)
    trace.write_text(trace.read_text().replace('"scanner":"door"', '"scanner":"front"'))
    members = tmp_path / "members.json"
    members.write_text(
        json.dumps({"chain_prefix": PREFIX, "members": [{"id": "walker", "key": WALKER_KEY}]})
    )
    config = tmp_path / "hub.toml"
    config.write_text(
        '[store]\nid = "s1"\nname = "Shop"\n\n'
        '[[beacons.presence.scanners]]\nname = "front"\nzone = "entrance"\n'
    )
    result = CliRunner().invoke(
        main, ["beacons", "replay", str(trace), "--members", str(members), "--config", str(config)]
    )
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["event"], e["zone"]) for e in events] == [("arrived", "entrance")]
    # A file with only the presence table (no [store]) serves replay the same.
    config.write_text('[[beacons.presence.scanners]]\nname = "front"\nzone = "entrance"\n')
    alone = CliRunner().invoke(
        main, ["beacons", "replay", str(trace), "--members", str(members), "--config", str(config)]
    )
    assert alone.exit_code == 0 and alone.stdout == result.stdout, alone.output
    config.write_text('[store]\nid = "s1"\nname = "Shop"\n[beacons.presence]\nwindow = 3\n')
    bad = CliRunner().invoke(
        main, ["beacons", "replay", str(trace), "--members", str(members), "--config", str(config)]
    )
    assert bad.exit_code == 2 and "line 5: beacons.presence.window: unknown setting" in bad.output


def test_simulate_then_eval_round_trip(tmp_path: Path) -> None:
    out, truth = tmp_path / "sim.jsonl", tmp_path / "truth.jsonl"
    runner = CliRunner()
    made = runner.invoke(
        main,
        [
            "beacons",
            "simulate",
            "--out",
            str(out),
            "--truth",
            str(truth),
            "--seed",
            "7",
            "--duration",
            "1800",
            "--visits-per-hour",
            "30",
        ],
    )
    assert made.exit_code == 0, made.output
    assert (tmp_path / "sim.members.json").is_file()
    scored = runner.invoke(main, ["beacons", "eval", str(out), str(truth)])
    assert scored.exit_code == 0, scored.output
    metrics = json.loads(scored.stdout)
    assert set(metrics) == {"advertisements", "naive_dbm", "engine", "naive"}
    assert metrics["engine"]["visits"] == metrics["naive"]["visits"] > 0
    assert "false_arrivals_per_100_passers" in metrics["engine"]
    # a NaN threshold compared false with every reading: the baseline silently found no one
    refused = runner.invoke(main, ["beacons", "eval", str(out), str(truth), "--naive-dbm", "nan"])
    assert refused.exit_code == 2 and "'nan' is not a finite number" in refused.output


def test_eval_refuses_an_empty_trace_and_truth_it_cannot_score(tmp_path: Path) -> None:
    """Why: an empty trace scored every visit missed, an empty truth gave null metrics, and a
    truth record with a null member or a member of another members file was scored silently."""
    trace, truth, members = tmp_path / "t.jsonl", tmp_path / "truth.jsonl", tmp_path / "m.json"
    write_store_trace(trace)
    members.write_text(
        json.dumps({"chain_prefix": PREFIX, "members": [{"id": "walker", "key": WALKER_KEY}]})
    )
    visit = [
        {"t": START + 35, "member": "walker", "event": "arrived", "zone": "door"},
        {"t": START + 200, "member": "walker", "event": "left", "zone": "door"},
    ]
    truth.write_text("".join(json.dumps(r) + "\n" for r in visit))
    runner = CliRunner()

    def run(trace_path: Path) -> tuple[int, str]:
        result = runner.invoke(
            main, ["beacons", "eval", str(trace_path), str(truth), "--members", str(members)]
        )
        return result.exit_code, result.output

    code, output = run(trace)
    assert code == 0 and json.loads(output)["engine"]["visits"] == 1, output
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert run(empty) == (1, f"error: {empty}: the trace has no advertisements: nothing to "
                             "evaluate\n")
    for bad, line in (({**visit[1], "member": None}, 2), ({**visit[1], "member": "other"}, 2)):
        truth.write_text("".join(json.dumps(r) + "\n" for r in (visit[0], bad)))
        code, output = run(trace)
        assert code == 1 and output.startswith(f"error: {truth}:{line}: "), output
        assert "member" in output
    truth.write_text("")
    assert run(trace) == (1, f"error: {truth}: no visits and no passers-by in the truth: nothing "
                             "to score\n")


def test_fleet_commands(tmp_path: Path, repo_root: Path) -> None:
    fleet = repo_root / "firmware_configs" / "demo-store.yaml"
    runner = CliRunner()
    checked = runner.invoke(main, ["beacons", "validate", str(fleet)])
    assert checked.exit_code == 0 and "ok (5 beacons, 3 scanners)" in checked.output
    rendered = runner.invoke(main, ["beacons", "render", str(fleet), "--out", str(tmp_path)])
    assert rendered.exit_code == 0, rendered.output
    assert (tmp_path / "scanner-aisles.json").is_file()
    bad = tmp_path / "bad.yaml"
    bad.write_text("beacons:\n  - {id: x, kind: ibeacon}\n")
    failed = runner.invoke(main, ["beacons", "validate", str(bad)])
    assert failed.exit_code == 1 and "needs uuid, major, minor" in failed.output


def test_passive_scanning_needs_the_chain_prefix() -> None:
    """Why: without it the token pattern was empty, handed to BlueZ as it was."""
    result = CliRunner().invoke(main, ["beacons", "scan", "--mode", "passive", "--seconds", "1"])
    assert result.exit_code == 2 and "--mode passive needs --chain-prefix" in result.output


async def test_a_simulated_store_runs_through_the_hub_on_a_moved_clock(
    make_config: Callable[..., HubConfig],
) -> None:
    clock = ManualClock(NOON)
    scenario = Scenario(
        seed=11,
        start=NOON,
        duration_s=1500,
        visits_per_hour=40,
        passers_per_hour=60,
        non_members_per_hour=30,
        vary=False,
    )
    sim = simulate(scenario)
    config = make_config(beacons={"enabled": True, "source": "simulate"})
    svc = build_services(config, clock, with_features=False)
    try:
        presence = PresenceService(
            svc, source=SimulatedSource(sim, clock=clock.now, sleep=clock.sleep, watchdog_s=120)
        )
        await presence.start()
        for _ in range(int(scenario.duration_s)):
            for _ in range(20):
                await asyncio.sleep(0)
            clock.advance(1.0)
        await presence._events.join()
        await presence.stop()
        arrived = svc.db.query("SELECT member_id FROM presence_events WHERE event = 'arrived'")
        visitors = {r["member"] for r in sim.truth if r["event"] == "arrived"}
        assert arrived, "no arrivals from the simulated store"
        assert {r["member_id"] for r in arrived} <= visitors | {
            r["member"] for r in sim.truth if r["event"] == "passed"
        }
        assert svc.db.query("SELECT * FROM reminders") == []  # simulated members never consented
    finally:
        svc.close()


async def test_a_member_inside_stays_inside_when_ntp_sets_the_clock(
    make_config: Callable[..., HubConfig], catalog_rows: list, tmp_path: Path
) -> None:
    """Why: silences were counted on the wall clock, so when NTP set a Pi that had run 3 days
    behind (no battery clock, network back mid-afternoon) every member inside was "left" and
    "arrived" again, with a second reminder for an order already announced; set a year back,
    their advertisements were all "late" for a year. And (review) an order made ready after
    the step must not remind the visit's first order again: the visit is known by its
    arrival's time as recorded."""
    clock = ManualClock(NOON)
    config = make_config(beacons={"enabled": True, "source": "simulate", "chain_prefix": PREFIX})
    svc = build_services(config, clock, with_features=False)
    quiet = Scenario(seed=1, start=NOON, duration_s=120, visits_per_hour=0, passers_per_hour=0,
                     non_members_per_hour=0, vary=False)
    try:
        assert not svc.catalog.import_rows(catalog_rows, tmp_path).rejected
        svc.members.upsert(MemberIn(id="walker", consent=True, beacon_key=WALKER_KEY))
        for order in ("first", "second"):
            svc.orders.place(OrderIn(id=order, member="walker",
                                     lines=[OrderLineIn(sku="OAT-1", qty=1)]))
            if svc.orders.get(order).state == "pending":
                svc.orders.accept(order)
        svc.orders.mark_ready("first")
        simulation = simulate(quiet)  # a live source: the hub's clock stamps what it hears
        presence = PresenceService(svc, source=SimulatedSource(
            simulation, clock=clock.now, sleep=clock.sleep, watchdog_s=120))
        presence.resolver.set_keys(svc.members.keys())
        prefix = simulation.members.chain_prefix

        def walker(rssi: int) -> list[PresenceEvent]:
            """The member heard once, as the source hands it on; the events recorded."""
            uuid = token_uuid(prefix, bytes.fromhex(WALKER_KEY), window_of(clock.now()))
            presence.on_advertisement(Advertisement(
                t=clock.now(), scanner="door", address="5A:00:00:00:00:01", rssi=rssi,
                service_uuids=[uuid]))
            return recorded()

        def recorded() -> list[PresenceEvent]:
            events = []
            while not presence._events.empty():  # noqa: SLF001 - what the recorder task does
                events.append(presence._events.get_nowait())  # noqa: SLF001
                presence.record(events[-1])
            return events

        def heard(seconds: float) -> list[tuple[str, float]]:
            """The member browsing, heard every second for ``seconds``, with the 1 s timer."""
            events = []
            for _ in range(int(seconds)):
                clock.advance(1.0)
                events += walker(-82)
                presence._queue(presence.pipeline.expire(clock.now()))  # noqa: SLF001
                events += recorded()
            return [(e.event, e.t) for e in events]

        start = clock.now()
        walked = []
        for t, rssi in walk_in():  # the walk-in at the door
            clock.advance(start + t - clock.now())
            walked += walker(rssi)
        (arrived,) = walked
        assert arrived.event == "arrived"
        assert [e.event for e in heard(30)] == []
        clock.step(3 * 86_400)  # NTP: the clock was 3 days behind
        assert heard(60) == []
        (view,) = presence.present()
        assert view.arrived == arrived.t  # the visit, as the reminders recorded it
        svc.orders.mark_ready("second")
        presence._remind(view)  # noqa: SLF001 - what an order made ready while inside does
        sent = svc.db.query("SELECT order_id FROM reminders WHERE kind = 'member' AND "
                            "status = 'sent' ORDER BY id")
        assert [r["order_id"] for r in sent] == ["first", "second"]
        clock.step(-365 * 86_400)  # a wrong server, a year back
        assert heard(60) == [] and presence.pipeline.late == 0
        # what staff see is on the clock as it reads now ...
        (view,) = presence.present()
        assert clock.now() - 1 <= view.last_seen <= clock.now()
        assert view.links[0].last_seen == view.last_seen and view.arrived == arrived.t
        # ... and a real silence still ends the visit, at the wall time it ended
        clock.advance(400)
        (left,) = presence.pipeline.expire(clock.now())
        assert left.event == "left" and clock.now() - 400 < left.t <= clock.now()
    finally:
        svc.close()


def test_eval_names_the_first_line_out_of_order_as_replay_does(tmp_path: Path) -> None:
    """Why: eval's warning gave a count and no line, while beacons/README.md says replay and
    eval both warn with the first such line."""
    out, truth = tmp_path / "sim.jsonl", tmp_path / "truth.jsonl"
    runner = CliRunner()
    made = runner.invoke(
        main, ["beacons", "simulate", "--out", str(out), "--truth", str(truth), "--seed", "2",
               "--duration", "1200"]
    )
    assert made.exit_code == 0, made.output
    lines = out.read_text().splitlines(keepends=True)
    first_t = json.loads(lines[0])["t"]
    later = next(n for n, line in enumerate(lines) if json.loads(line)["t"] > first_t + 60)
    lines.insert(later, lines.pop(0))  # the first advertisement now comes a minute late
    out.write_text("\n" + "".join(lines))  # lines count as the file has them, blank ones too
    late_line = later + 2  # after the blank line, counted from 1
    for command in (["eval", str(out), str(truth)],
                    ["replay", str(out), "--members", str(tmp_path / "sim.members.json")]):
        result = runner.invoke(main, ["beacons", *command])
        assert result.exit_code == 0, result.output
        assert f"warning: {out}:{late_line}: 1 advertisements are more than 5 s older" in (
            result.stderr
        ), command


def test_scan_leaves_no_empty_trace_when_it_cannot_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why: without BlueZ, scan --out said so and left an empty trace behind, which reads as a
    store where nothing was heard."""

    class NoBlueZ:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        async def run(self, sink: object) -> None:
            raise ScannerUnavailableError("BlueZ is not reachable")

    monkeypatch.setattr("hub.cli.beacons.BleakSource", NoBlueZ)
    out = tmp_path / "scan.jsonl"
    result = CliRunner().invoke(main, ["beacons", "scan", "--seconds", "1", "--out", str(out)])
    assert result.exit_code == 1 and "BlueZ is not reachable" in result.output
    assert not out.exists()


def test_a_scan_stopped_after_it_heard_something_keeps_its_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why (review): the empty-trace cleanup judged emptiness by the file's size before its
    buffer was written out, so a short scan stopped (Ctrl-C, an adapter unplugged) lost what
    it had recorded."""

    class HeardThenStopped:  # the radio: three advertisements, then the adapter is gone
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        async def run(self, sink: Callable[[Advertisement], None]) -> None:
            for n in range(3):
                sink(Advertisement(t=NOON + n, scanner="door", address="5A:00:00:00:00:01",
                                   rssi=-60))
            raise ScannerUnavailableError("the adapter went away")

    monkeypatch.setattr("hub.cli.beacons.BleakSource", HeardThenStopped)
    out = tmp_path / "scan.jsonl"
    result = CliRunner().invoke(main, ["beacons", "scan", "--seconds", "30", "--out", str(out)])
    assert result.exit_code == 1 and "the adapter went away" in result.output
    assert len(out.read_text().splitlines()) == 3
