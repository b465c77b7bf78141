"""``retail-hub beacons``: replay, simulate and evaluate presence; check and render the fleet;
record a trace from the real radio.

``replay``, ``simulate`` and ``eval`` are contracts outside checks call exactly (beacons/README.md):
presence events go to stdout one JSON object per line, everything else to stderr."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import msgspec
from pydantic import ValidationError

from beacons.errors import BeaconsError
from beacons.evaluation import evaluate, read_truth, write_truth
from beacons.fleet import load_fleet, render_beacon, render_scanner, zone_problems
from beacons.members_file import load_members, save_members
from beacons.naive import ThresholdDetector
from beacons.pipeline import LATE_S, replay_pipeline
from beacons.presence import PresenceEngine
from beacons.settings import PresenceSettings
from beacons.simulator import Scenario, simulate
from beacons.sources.bleak_scanner import BleakSource
from beacons.tokens import parse_prefix
from beacons.trace import RSSI_DBM, encode, read_numbered_trace, write_trace
from hub.cli.common import FiniteRange, load
from hub.config import load_presence
from sync.broker_setup import TOPIC_PREFIX_PATTERN

_event_encoder = msgspec.json.Encoder()


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _reports_beacon_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Bad traces, members files and fleet files end the command with their message, exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BeaconsError as exc:
            _fail(str(exc))
        except BrokenPipeError:
            # stdout's reader has gone (replay | head -1): it wants nothing more, so no message;
            # stdout is pointed at /dev/null so Python's own flush at exit does not fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)  # 128 + SIGPIPE: what a shell reports for a command cut off so
        except OSError as exc:  # a full disk, a folder that went away
            _fail(f"{exc.filename or 'output'}: {exc.strerror or exc}")

    return wrapper


#: The shortest simulated run the CLI takes: visits start until 900 s before the end (so each
#: departure and the silence after it are in the trace), so a shorter run could hold none.
MIN_SIMULATE_S = 1200.0
MAX_SIMULATE_S = 7 * 86400.0


def _scenario_option(
    field: str, kind: click.ParamType | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A simulate option made from the scenario field: its type (or ``kind``, a range click
    checks before anything runs), default and description."""
    info = Scenario.model_fields[field]
    return click.option(
        f"--{field.replace('_', '-')}",
        type=kind or info.annotation,
        default=info.default,
        show_default=True,
        help=info.description,
    )


def _presence_settings(config_path: Path | None) -> PresenceSettings:
    """The [beacons.presence] table of the config, or the defaults (one scanner, 'door'); a bad
    table ends the command with its problems listed (exit 2, as for the hub's config)."""
    return PresenceSettings() if config_path is None else load(config_path, load_presence)


def _members_path(trace: Path) -> Path:
    return trace.with_name(trace.name.removesuffix(".jsonl") + ".members.json")


@click.group()
def beacons() -> None:
    """Bluetooth LE presence: traces, simulation, evaluation and the beacon fleet."""


@beacons.command("replay")
@click.argument("trace", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--members",
    "members_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help='{"chain_prefix": "<16 hex>", "members": [{"id", "key"}]}',
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="hub.toml (or a file with only its [beacons.presence] table) whose presence "
    "settings to use (default: one scanner named 'door' just inside the entrance).",
)
@_reports_beacon_errors
def replay_cmd(trace: Path, members_path: Path, config_path: Path | None) -> None:
    """Print the presence events of TRACE, one JSON object per line, as fast as possible."""
    settings = _presence_settings(config_path)
    members = load_members(members_path)
    try:
        stream = trace.open("rb")
    except OSError as exc:
        _fail(f"{trace}: cannot open trace: {exc.strerror}")
        return
    pipeline, engine = replay_pipeline(members, settings)
    out = sys.stdout.buffer
    with stream:
        for event in pipeline.run_lines(stream, source=str(trace)):
            out.write(
                _event_encoder.encode(
                    {
                        "t": round(event.t, 3),
                        "member": event.member,
                        "event": event.event,
                        "zone": event.zone,
                    }
                )
            )
            out.write(b"\n")
    out.flush()
    if not pipeline.advertisements:  # no events because nothing was heard, not because no one came
        click.echo(f"warning: {trace} holds no advertisements", err=True)
    elif not pipeline.resolved:
        click.echo(
            f"warning: none of the {pipeline.advertisements} advertisements in {trace} is a "
            f"token of a member in {members_path} (another chain prefix, or other keys?)",
            err=True,
        )
    if pipeline.late:
        click.echo(
            f"warning: {trace}:{pipeline.first_late_line}: {_late(pipeline.late)}",
            err=True,
        )
    unknown = engine.unknown_scanners
    if unknown:
        names = ", ".join(f"{name} ({count})" for name, count in sorted(unknown.items()))
        click.echo(
            f"warning: ignored member sightings from scanners not in the config: {names}; "
            "name them in [beacons.presence] scanners (--config)",
            err=True,
        )


def _late(count: int) -> str:
    return (
        f"{count} advertisements are more than {LATE_S:g} s older than one before them; the "
        "engine decides in the trace's order, so the results are not to be trusted: sort the "
        "trace by t"
    )


@beacons.command("simulate")
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Trace to write (JSON Lines).",
)
@click.option(
    "--truth",
    "truth_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Ground truth to write (JSON Lines).",
)
@click.option(
    "--members",
    "members_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Members file to write [default: TRACE.members.json].",
)
@_scenario_option("seed", click.IntRange(min=0))
@click.option(
    "--duration",
    "duration_s",
    type=FiniteRange(MIN_SIMULATE_S, MAX_SIMULATE_S),
    default=3600.0,
    show_default=True,
    help=f"Seconds of trace, {MIN_SIMULATE_S:g} (visits start until 900 s before the end) to "
    f"{MAX_SIMULATE_S:g} (a week).",
)
@click.option(
    "--layout",
    type=click.Choice(["single", "pair", "zones"]),
    default="single",
    show_default=True,
    help="One door scanner; the same plus an interior scanner "
    "'inner'; or three zones with a scanner each.",
)
@_scenario_option("visits_per_hour")
@_scenario_option("passers_per_hour")
@_scenario_option("window_shopper_share")
@_scenario_option("non_members_per_hour")
@_scenario_option("background_share")
@_scenario_option("quiet_at_entry_share")
@_scenario_option("store_beacons")
@click.option(
    "--fixed-store",
    is_flag=True,
    help="One reference store instead of drawing the physics from the seed.",
)
@_reports_beacon_errors
def simulate_cmd(
    out_path: Path,
    truth_path: Path,
    members_path: Path | None,
    seed: int,
    duration_s: float,
    layout: str,
    visits_per_hour: float,
    passers_per_hour: float,
    window_shopper_share: float,
    non_members_per_hour: float,
    background_share: float,
    quiet_at_entry_share: float,
    store_beacons: int,
    fixed_store: bool,
) -> None:
    """Simulate a store and write its trace, ground truth and members file."""
    try:
        scenario = Scenario(
            seed=seed,
            duration_s=duration_s,
            layout=layout,
            visits_per_hour=visits_per_hour,
            passers_per_hour=passers_per_hour,
            window_shopper_share=window_shopper_share,
            non_members_per_hour=non_members_per_hour,
            background_share=background_share,
            quiet_at_entry_share=quiet_at_entry_share,
            store_beacons=store_beacons,
            vary=not fixed_store,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"--{str(e['loc'][0]).removesuffix('_s').replace('_', '-')}: {e['msg']}"
            for e in exc.errors()
        )
        _fail(f"bad scenario: {problems}")
        return
    members_path = members_path or _members_path(out_path)
    outputs = {"--out": out_path, "--truth": truth_path, "--members": members_path}
    seen: dict[Path, str] = {}
    for option, path in outputs.items():
        if not path.parent.is_dir():
            _fail(f"{path}: folder {path.parent} does not exist")
        same = seen.setdefault(path.resolve(), option)
        if same != option:  # the second file written would replace the first
            _fail(f"{option} and {same} name the same file, {path}: give each its own")
    sim = simulate(scenario)
    count = write_trace(out_path, sim.advertisements)
    write_truth(truth_path, sim.truth)
    save_members(members_path, sim.members)
    visits = sum(1 for r in sim.truth if r["event"] == "arrived")
    passers = sum(1 for r in sim.truth if r["event"] == "passed")
    click.echo(
        f"wrote {count} advertisements to {out_path}, {visits} visits and {passers} "
        f"passers-by to {truth_path}, members to {members_path}",
        err=True,
    )
    if not visits:
        click.echo(
            "warning: the run has no visits (Poisson arrivals at --visits-per-hour "
            f"{visits_per_hour:g} over {duration_s - 900:g} s gave none): raise either to "
            "score arrivals",
            err=True,
        )


@beacons.command("eval")
@click.argument("trace", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("truth", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--members",
    "members_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Members file [default: TRACE.members.json].",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="hub.toml (or a file with only its [beacons.presence] table) to evaluate.",
)
@click.option(
    "--naive-dbm",
    type=FiniteRange(RSSI_DBM[0], RSSI_DBM[1]),
    default=-70.0,
    show_default=True,
    help="Threshold of the fixed-threshold baseline scored alongside.",
)
@_reports_beacon_errors
def eval_cmd(
    trace: Path, truth: Path, members_path: Path | None, config_path: Path | None, naive_dbm: float
) -> None:
    """Score the presence engine (and the naive baseline) on TRACE against TRUTH; JSON out."""
    settings = _presence_settings(config_path)
    members = load_members(members_path or _members_path(trace))
    records = read_truth(truth, members.keys)
    evaluation = evaluate(
        read_numbered_trace(trace),
        records,
        members,
        {
            "engine": lambda clock: PresenceEngine(settings, clock),
            "naive": lambda clock: ThresholdDetector(settings, naive_dbm),
        },
    )
    if not evaluation.advertisements:
        # every visit would be scored missed, as if the engine had failed on a real trace
        _fail(f"{trace}: the trace has no advertisements: nothing to evaluate")
    if evaluation.late:
        click.echo(
            f"warning: {trace}:{evaluation.first_late_line}: {_late(evaluation.late)}", err=True
        )
    click.echo(
        json.dumps(
            {
                "advertisements": evaluation.advertisements,
                "naive_dbm": naive_dbm,
                **{name: s.metrics() for name, s in evaluation.scores.items()},
            },
            indent=2,
        )
    )


@beacons.command("validate")
@click.argument("fleet", type=click.Path(path_type=Path), nargs=-1, required=True)
@_reports_beacon_errors
def validate_cmd(fleet: tuple[Path, ...]) -> None:
    """Check fleet files (firmware_configs/*.yaml, or a folder of them) against the schema, and
    the beacons' zones against the zones the scanners cover (a beacon in no scanner's zone is
    refused; a scanner with no beacon in its zone is a warning). Every file is checked; exit 1
    if any failed."""
    files = [p for given in fleet for p in _fleet_files(given)]
    failed = 0
    for path in files:
        try:
            declared = load_fleet(path)
        except BeaconsError as exc:
            click.echo(f"error: {exc}", err=True)
            failed += 1
            continue
        errors, warnings = zone_problems(declared)
        for warning in warnings:
            click.echo(f"warning: {path}: {warning}", err=True)
        if errors:
            click.echo(f"error: {path}: {len(errors)} problem(s):\n"
                       + "\n".join(f"  {e}" for e in errors), err=True)
            failed += 1
            continue
        unchecked = "" if declared.scanners else "; zones not checked: it declares no scanners"
        click.echo(
            f"{path}: ok ({len(declared.beacons)} beacons, {len(declared.scanners)} scanners)"
            + unchecked
        )
    if failed:
        _fail(f"{failed} of {len(files)} fleet file(s) have problems (above)")


def _fleet_files(given: Path) -> list[Path]:
    """``given``, or the YAML files in it when it is a folder (firmware_configs/)."""
    if not given.is_dir():
        return [given]
    found = sorted(p for p in given.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not found:
        raise click.BadParameter(
            f"{given} holds no fleet files (*.yaml, *.yml)", param_hint="FLEET"
        )
    return found


@beacons.command("render")
@click.argument("fleet", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write one <device>.json per device here instead of printing.",
)
@click.option(
    "--topic-prefix",
    default="retail",
    show_default=True,
    callback=lambda _ctx, _param, value: _topic_prefix(value),
    help="First segment of the relay nodes' MQTT topics (as the hub's mqtt.topic_prefix).",
)
@_reports_beacon_errors
def render_cmd(fleet: Path, out_dir: Path | None, topic_prefix: str) -> None:
    """Render each device's settings to flash (beacon payloads, scanner parameters)."""
    declared = load_fleet(fleet)
    if declared.store is None and any(s.kind == "esp32-relay" for s in declared.scanners):
        _fail(f"{fleet}: relay nodes publish under the store id; add 'store: <id>' to the file")
    store = declared.store or ""
    devices = {
        **{f"beacon-{b.id}": render_beacon(b) for b in declared.beacons},
        **{
            f"scanner-{s.name}": render_scanner(s, store=store, topic_prefix=topic_prefix)
            for s in declared.scanners
        },
    }
    if out_dir is None:
        click.echo(json.dumps(devices, indent=2))
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, settings in devices.items():
        (out_dir / f"{name}.json").write_text(json.dumps(settings, indent=2) + "\n")
    click.echo(f"wrote {len(devices)} device files to {out_dir}", err=True)


def _topic_prefix(value: str) -> str:
    """``value`` if it is a topic prefix the hub's config would take: a relay node flashed with
    '/', '+' or '#' in it would publish where no one subscribes, or be refused by the broker."""
    if not re.fullmatch(TOPIC_PREFIX_PATTERN, value):
        raise click.BadParameter(
            f"{value!r} is not one topic level of lowercase letters, digits, '-' and '_' "
            "(as mqtt.topic_prefix)"
        )
    return value


@beacons.command("scan")
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Trace file to write [default: stdout].",
)
@click.option(
    "--seconds", type=FiniteRange(min=1), default=60.0, show_default=True, help="How long."
)
@click.option("--adapter", default=None, help="BlueZ adapter, e.g. hci1.")
@click.option(
    "--scanner",
    "scanner_name",
    default="door",
    show_default=True,
    help="Scanner name to stamp on the records.",
)
@click.option(
    "--mode", type=click.Choice(["active", "passive"]), default="active", show_default=True
)
@click.option("--chain-prefix", default="", help="16 hex digits; needed for passive scanning.")
@_reports_beacon_errors
def scan_cmd(
    out_path: Path | None,
    seconds: float,
    adapter: str | None,
    scanner_name: str,
    mode: str,
    chain_prefix: str,
) -> None:
    """Record what the real adapter hears as a trace (for calibration and bug reports)."""
    import time

    if mode == "passive" and not chain_prefix:
        # BlueZ lets through only what the monitor patterns match; without the prefix, shoppers'
        # tokens would have no pattern at all
        raise click.UsageError("--mode passive needs --chain-prefix (16 hex digits from the shop)")
    prefix = parse_prefix(chain_prefix) if chain_prefix else b""
    new_file = out_path is not None and not out_path.exists()
    sink_file = out_path.open("wb") if out_path else sys.stdout.buffer
    written = 0

    def sink(adv: Any) -> None:
        nonlocal written
        sink_file.write(encode(adv) + b"\n")
        written += 1

    source = BleakSource(
        scanner_name,
        clock=time.time,
        sleep=asyncio.sleep,
        adapter=adapter,
        mode=mode,  # type: ignore[arg-type]
        chain_prefix=prefix,
        watchdog_s=max(seconds, 5.0),
    )

    async def run() -> None:
        try:
            await asyncio.wait_for(source.run(sink), timeout=seconds)
        except TimeoutError:
            pass

    try:
        asyncio.run(run())
    except BaseException:
        if new_file and out_path is not None and not written:
            # the scan could not start (no BlueZ, no adapter): an empty trace left behind would
            # read as a quiet store. Counted, not sized: what a scan stopped with Ctrl-C heard
            # may still sit in the file's buffer, and that recording was deleted.
            sink_file.close()
            out_path.unlink()
        raise
    finally:
        if out_path:
            sink_file.close()
