"""Scores presence events against simulator ground truth.

Truth lines are presence events of the contract shape for members who walk in ("arrived", "zone",
"left") plus one "passed" record per member who only walked past (``lingered`` for window-shoppers),
so the same matching works for any detector's output."""

from __future__ import annotations

import bisect
import functools
import json
import math
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from beacons.advertisement import Advertisement
from beacons.errors import TraceError
from beacons.members_file import MemberKeys
from beacons.pipeline import Detector, PresencePipeline, TraceClock
from beacons.presence import PresenceEvent
from beacons.tokens import TokenResolver
from beacons.trace import T_RANGE_S, numbered_lines
from untrusted.json_keys import DuplicateKeyError, loads_unique

EARLY_S = 30.0  # an arrival this long before the door crossing is early (latency < 0), not false
QUIET_AROUND_S = 5.0  # not heard this close to the door crossing: the phone was quiet there
ZONE_STEP_S = 1.0
TRUTH_EVENTS = frozenset({"arrived", "zone", "left", "passed", "scenario"})


@dataclass
class _Visit:
    member: str
    arrived: float
    left: float
    zones: list[tuple[float, str]]
    detected: float | None = None
    departed: float | None = None
    flaps: int = 0


@dataclass
class Score:
    """Counts behind the metrics, so several runs can be pooled before taking ratios."""

    latencies: list[float] = field(default_factory=list)
    departure_latencies: list[float] = field(default_factory=list)
    visits: int = 0
    missed: int = 0
    missed_quiet: int = 0  # not heard within QUIET_AROUND_S of the door: nothing to decide on
    missed_present: int = 0  # still inside by the detector at the door: arrived while looking in
    # more than EARLY_S before it, or never let go since an earlier visit
    passers: int = 0
    window_shoppers: int = 0
    false_passers: int = 0
    false_window_shoppers: int = 0
    false_other: int = 0
    flaps: int = 0
    visit_hours: float = 0.0
    zone_hits: int = 0
    zone_samples: int = 0

    def add(self, other: Score) -> None:
        """Pool another run's counts into this one."""
        for name, value in vars(other).items():
            if isinstance(value, list):
                getattr(self, name).extend(value)
            else:
                setattr(self, name, getattr(self, name) + value)

    def metrics(self) -> dict[str, object]:
        """The bench/eval figures."""
        lat = sorted(self.latencies)
        dep = sorted(self.departure_latencies)
        all_passers = self.passers + self.window_shoppers
        false_passing = self.false_passers + self.false_window_shoppers
        return {
            "visits": self.visits,
            "passers_by": all_passers,
            "window_shoppers": self.window_shoppers,
            "arrival_latency_p50_s": _pct(lat, 50),
            "arrival_latency_p95_s": _pct(lat, 95),
            "missed_arrivals_pct": _ratio(self.missed, self.visits, 100),
            "missed_by_cause_pct": {
                "quiet_at_the_door": _ratio(self.missed_quiet, self.visits, 100),
                "already_present_at_the_door": _ratio(self.missed_present, self.visits, 100),
                "heard_but_not_recognised": _ratio(
                    self.missed - self.missed_quiet - self.missed_present, self.visits, 100
                ),
            },
            "false_arrivals_per_100_passers": _ratio(false_passing, all_passers, 100),
            "false_arrivals_per_100_window_shoppers": _ratio(
                self.false_window_shoppers, self.window_shoppers, 100
            ),
            "false_arrivals_other": self.false_other,
            "flaps_per_visit_hour": _ratio(self.flaps, self.visit_hours, 1),
            "departure_latency_p50_s": _pct(dep, 50),
            "departure_latency_p95_s": _pct(dep, 95),
            "zone_accuracy": _ratio(self.zone_hits, self.zone_samples, 1),
        }


def _pct(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    index = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return round(values[index], 3)


def _ratio(part: float, whole: float, scale: float) -> float | None:
    return round(part / whole * scale, 4) if whole else None


def score(
    truth: Iterable[Mapping[str, object]],
    events: Iterable[PresenceEvent],
    heard: Mapping[str, Sequence[float]],
) -> Score:
    """Match detected events to the truth of one run. ``heard`` (each member's sighting times,
    sorted) splits missed arrivals by cause: a phone quiet at the door gave nothing to decide on,
    which no detector can fix; one heard there and not recognised is the detector's. A visit
    the truth never closes lasts to the end of the run (the last truth record or sighting)."""
    visits: dict[str, list[_Visit]] = defaultdict(list)
    passers: dict[str, bool] = {}
    open_visits: dict[str, _Visit] = {}
    end = max((times[-1] for times in heard.values() if times), default=-math.inf)
    for record in truth:
        kind, member = record.get("event"), record.get("member")
        t = float(record["t"])  # type: ignore[arg-type]
        end = max(end, t)
        if not isinstance(member, str):
            continue
        if kind == "arrived":
            if member in open_visits:  # read_truth refuses this; a caller's own truth may not
                open_visits.pop(member).left = t
            visit = _Visit(member, t, float("inf"), [(t, str(record["zone"]))])
            open_visits[member] = visit
            visits[member].append(visit)
        elif kind == "zone" and member in open_visits:
            open_visits[member].zones.append((t, str(record["zone"])))
        elif kind == "left" and member in open_visits:
            open_visits.pop(member).left = t
        elif kind == "passed":
            passers[member] = bool(record.get("lingered"))
    for visit in open_visits.values():
        visit.left = max(end, visit.arrived)

    result = Score(
        passers=sum(1 for lingered in passers.values() if not lingered),
        window_shoppers=sum(1 for lingered in passers.values() if lingered),
    )
    detected_zones: dict[str, list[tuple[float, str | None]]] = defaultdict(list)
    member_events: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for event in sorted(events, key=lambda e: e.t):
        member_events[event.member].append((event.t, event.event))
        zone = event.zone if event.event != "left" else None
        detected_zones[event.member].append((event.t, zone))
        visit = _visit_at(visits.get(event.member, []), event.t)
        if event.event == "arrived":
            if visit is None:
                if event.member in passers:
                    if passers[event.member]:
                        result.false_window_shoppers += 1
                    else:
                        result.false_passers += 1
                else:
                    result.false_other += 1
            elif visit.detected is None:
                visit.detected = event.t
        elif event.event == "left" and visit is not None:
            visit.flaps += 1  # said "left" while the member was still inside
        elif event.event == "left":
            for candidate in visits.get(event.member, []):
                if candidate.left <= event.t and candidate.departed is None:
                    candidate.departed = event.t
                    break

    for member_visits in visits.values():
        for visit in member_visits:
            result.visits += 1
            result.visit_hours += (visit.left - visit.arrived) / 3600
            result.flaps += visit.flaps
            if visit.detected is None:
                result.missed += 1
                if _quiet_at_door(heard.get(visit.member, ()), visit.arrived):
                    result.missed_quiet += 1
                elif _present_at_door(member_events.get(visit.member, []), visit.arrived):
                    result.missed_present += 1
                continue
            result.latencies.append(visit.detected - visit.arrived)
            if visit.departed is not None:
                result.departure_latencies.append(visit.departed - visit.left)
            hits, samples = _zone_agreement(visit, detected_zones[visit.member])
            result.zone_hits += hits
            result.zone_samples += samples
    return result


def _quiet_at_door(times: Sequence[float], crossed: float) -> bool:
    """Whether the member went unheard within QUIET_AROUND_S either side of the crossing."""
    i = bisect.bisect_left(times, crossed - QUIET_AROUND_S)
    return i == len(times) or times[i] > crossed + QUIET_AROUND_S


def _present_at_door(events: list[tuple[float, str]], crossed: float) -> bool:
    """Whether the detector's last word on the member before the crossing left them inside."""
    i = bisect.bisect_left(events, (crossed, ""))
    return i > 0 and events[i - 1][1] != "left"


def _visit_at(visits: list[_Visit], t: float) -> _Visit | None:
    for visit in visits:
        if visit.arrived - EARLY_S <= t < visit.left:
            return visit
    return None


def _zone_agreement(visit: _Visit, detected: list[tuple[float, str | None]]) -> tuple[int, int]:
    """Seconds (sampled every ZONE_STEP_S) of the visit after detection where the detected zone
    equals the truth. Counted per stretch between zone changes rather than sample by sample, so
    the work grows with the events, not with the length of the visit: a truth whose visit lasts
    1e9 s scores as fast as one of minutes instead of stepping through every second."""
    times = [t for t, _ in detected]
    truth_times = [t for t, _ in visit.zones]
    start = max(visit.arrived, visit.detected or visit.arrived)
    end = visit.left
    changes = sorted({t for t in (*times, *truth_times) if start < t < end})
    hits = samples = 0
    for lo, hi in zip([start, *changes], [*changes, end], strict=True):
        first = math.ceil((lo - start) / ZONE_STEP_S)  # the samples start + k * step in [lo, hi)
        count = math.ceil((hi - start) / ZONE_STEP_S) - first
        if count <= 0:
            continue
        t = start + first * ZONE_STEP_S
        i = bisect.bisect_right(times, t) - 1
        j = bisect.bisect_right(truth_times, t) - 1
        if i >= 0 and j >= 0:
            samples += count
            hits += count if detected[i][1] == visit.zones[j][1] else 0
    return hits, samples


def read_truth(path: Path, members: Collection[str] | None = None) -> list[dict[str, object]]:
    """Ground-truth records (JSON Lines). Raises TraceError naming the line of a bad record.

    Scoring pairs each "arrived" with the member's next "left", in file order, so a truth that
    breaks that pairing (arrived twice, left or zone without arrived, records out of time
    order) would be scored as something else without a word: it is refused here instead. So is
    a member the ``members`` file does not hold, whose visits no detector could ever recognise,
    and a truth with nothing to score against."""
    source = str(path)
    records: list[dict[str, object]] = []
    inside: dict[str, int] = {}  # member -> line of their open "arrived"
    previous = -math.inf
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise TraceError(f"cannot read truth file: {exc.strerror}", source=source) from exc
    with stream:
        for number, line in numbered_lines(stream, source=source):
            record = _truth_record(line, source, number)
            t, kind, member = record["t"], record["event"], record.get("member")
            assert isinstance(t, int | float)
            bad = functools.partial(TraceError, source=source, line=number)
            if t < previous:
                raise bad(f"t {t!r} is before the line above's {previous!r}: sort the truth by t")
            previous = t
            if kind == "scenario":
                records.append(record)
                continue
            if not isinstance(member, str) or not member:
                raise bad(f'a "{kind}" record needs "member", a member id, got {member!r}')
            if members is not None and member not in members:
                raise bad(
                    f"member {member!r} is not in the members file, so no detector could "
                    "recognise them: give eval the members file written with this truth"
                )
            if kind in ("arrived", "zone") and not isinstance(record.get("zone"), str):
                raise bad(f'"{kind}" needs "zone", a zone name')
            if kind == "arrived" and member in inside:
                raise bad(
                    f"member {member!r} arrives again without a \"left\" since line "
                    f"{inside[member]}"
                )
            if kind in ("zone", "left") and member not in inside:
                raise bad(f'"{kind}" for member {member!r}, who has not arrived')
            if kind == "arrived":
                inside[member] = number
            elif kind == "left":
                del inside[member]
            records.append(record)
    if not any(r["event"] in ("arrived", "passed") for r in records):
        message = "no visits and no passers-by in the truth: nothing to score"
        raise TraceError(message, source=source)
    return records


def _truth_record(line: bytes, source: str, number: int) -> dict[str, object]:
    """One truth line as a record with an ``event`` of TRUTH_EVENTS and a ``t`` in range."""
    try:
        record = loads_unique(line.decode("utf-8"))
    except DuplicateKeyError as exc:
        raise TraceError(str(exc), source=source, line=number) from None
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 text ({exc.reason} at byte {exc.start + 1} of the line)"
        raise TraceError(message, source=source, line=number) from exc
    except json.JSONDecodeError as exc:
        raise TraceError(f"not valid JSON: {exc}", source=source, line=number) from exc
    except RecursionError as exc:
        raise TraceError("JSON nested too deeply", source=source, line=number) from exc
    if not isinstance(record, dict) or record.get("event") not in TRUTH_EVENTS:
        raise TraceError(
            f"a truth record is a JSON object with an 'event' in {sorted(TRUTH_EVENTS)}",
            source=source,
            line=number,
        )
    t = record.get("t")
    # bool is an int to Python; NaN (which Python's json reads) fails the range
    number_t = isinstance(t, int | float) and not isinstance(t, bool)
    if not number_t or not T_RANGE_S[0] <= t <= T_RANGE_S[1]:  # type: ignore[operator]
        raise TraceError(
            f"t must be a time in seconds between {T_RANGE_S[0]:g} and {T_RANGE_S[1]:g}, as in "
            f"the trace, got {t!r}",
            source=source,
            line=number,
        )
    return record


def write_truth(path: Path, records: Iterable[Mapping[str, object]]) -> None:
    """Write ground truth as JSON Lines."""
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, separators=(",", ":")) + "\n")


class _Heard:
    """A detector that decides nothing and notes when each member was heard, through the very
    resolution path the detectors get."""

    next_deadline = math.inf

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)

    def observe(self, member: str, scanner: str, rssi: int, t: float) -> list[PresenceEvent]:
        self.times[member].append(t)
        return []

    def expire(self, now: float) -> list[PresenceEvent]:
        return []


@dataclass
class Evaluation:
    """Each detector's score, and what the one pass over the advertisements saw."""

    scores: dict[str, Score]
    advertisements: int
    #: advertisements more than ``LATE_S`` older than one before them (an unsorted trace)
    late: int
    #: the line of the first of them (None when there are none)
    first_late_line: int | None = None


def evaluate(
    numbered: Iterable[tuple[int, Advertisement]],
    truth: Sequence[Mapping[str, object]],
    members: MemberKeys,
    detectors: Mapping[str, Callable[[TraceClock], Detector]],
) -> Evaluation:
    """Run each detector over the same advertisements and score it against ``truth``.

    ``numbered`` holds each advertisement with its line in the trace (``read_numbered_trace``;
    ``enumerate(advertisements, 1)`` for a list), so the warning about an unsorted trace can
    name the first line out of order, as replay's does. One pass feeds every detector side by
    side, so a trace file is read as a stream: a store's day of advertisements (millions of
    lines) is never held in memory at once."""
    heard = _Heard()
    pipelines = {"": PresencePipeline(_resolver(members), heard)}
    for name, make in detectors.items():
        clock = TraceClock()
        pipelines[name] = PresencePipeline(_resolver(members), make(clock), clock)
    events: dict[str, list[PresenceEvent]] = {name: [] for name in pipelines}
    first = pipelines[""]
    for number, adv in numbered:
        for name, pipeline in pipelines.items():
            events[name] += pipeline.feed(adv)
        first.note_line(number)
    return Evaluation(
        scores={name: score(truth, events[name], heard.times) for name in detectors},
        advertisements=first.advertisements,
        late=first.late,
        first_late_line=first.first_late_line,
    )


def _resolver(members: MemberKeys) -> TokenResolver:
    return TokenResolver(members.chain_prefix, members.keys)
