"""The hot path shared by the live hub and replay: advertisement -> token -> member -> engine.

Anything that is not an opted-in member's current token is dropped right here, before any state:
its address, token and RSSI are neither stored nor logged."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import IO, Protocol

import msgspec

from beacons.advertisement import Advertisement
from beacons.members_file import MemberKeys
from beacons.presence import PresenceEngine, PresenceEvent
from beacons.settings import PresenceSettings
from beacons.tokens import TokenResolver, canonical
from beacons.trace import decode_line, numbered_lines


class Detector(Protocol):
    """What turns member sightings into events: the presence engine, or the naive baseline."""

    next_deadline: float

    def observe(self, member: str, scanner: str, rssi: int, t: float) -> list[PresenceEvent]:
        """One resolved sighting."""

    def expire(self, now: float) -> list[PresenceEvent]:
        """Events due by ``now``."""


class TraceClock:
    """The clock of a replay: the time of the latest advertisement seen. Injected into the
    engine so a trace replayed flat out decides exactly what the live hub would have."""

    def __init__(self) -> None:
        self.t = float("-inf")

    def __call__(self) -> float:
        return self.t


#: How far behind the newest advertisement one may arrive without counting as out of order:
#: scanner nodes relaying over MQTT deliver a few seconds apart.
LATE_S = 5.0


class PresencePipeline:
    """Feeds advertisements through the resolver into a detector, in arrival order.

    A trace must be in time order: the engine's clock is the newest time seen, so an
    advertisement from long before it is judged as if it were heard now. Such advertisements
    are counted (``late``, and ``first_late_line`` for a trace read by lines) so the caller can
    say the results are not to be trusted.

    Tokens are resolved on the advertisement's wall time (the phone's windows are wall time);
    the detector sees that time less ``wall_step``, so a wall clock set by hours is not a
    silence of hours, and its events are turned back into wall time."""

    def __init__(
        self,
        resolver: TokenResolver,
        detector: Detector,
        clock: TraceClock | None = None,
        wall_step: Callable[[], float] | None = None,
    ) -> None:
        self.resolver = resolver
        self.detector = detector
        self.clock = clock or TraceClock()
        #: How far the clock that stamps the advertisements has been set since the detector's
        #: time began (the live hub's wall clock, corrected by NTP); None for a trace's own time.
        self.wall_step = wall_step
        self.advertisements = 0
        self.resolved = 0
        self.late = 0
        self.first_late_line: int | None = None

    def feed(self, adv: Advertisement) -> list[PresenceEvent]:
        """Process one advertisement; returns the events due by its time."""
        return self.feed_fields(adv.t, adv.scanner, adv.rssi, adv.service_uuids)

    def feed_fields(
        self, t: float, scanner: str, rssi: int, service_uuids: list[str]
    ) -> list[PresenceEvent]:
        """``feed`` on the four fields presence needs (what the replay loop decodes)."""
        self.advertisements += 1
        step = self.wall_step() if self.wall_step is not None else 0.0
        steady = t - step
        if steady > self.clock.t:
            self.clock.t = steady
        elif steady < self.clock.t - LATE_S:
            self.late += 1
        detector = self.detector
        events = detector.expire(steady) if steady >= detector.next_deadline else []
        for uuid in service_uuids:
            member = self.resolver.resolve(uuid, t) or self.resolver.resolve(canonical(uuid), t)
            if member is not None:
                self.resolved += 1
                events += detector.observe(member, scanner, rssi, steady)
        return _on_wall(events, step)

    def expire(self, now: float) -> list[PresenceEvent]:
        """Events due by wall time ``now`` with no advertisement to trigger them (the live
        timer)."""
        step = self.wall_step() if self.wall_step is not None else 0.0
        return _on_wall(self.detector.expire(now - step), step)

    def run(self, advertisements: Iterable[Advertisement]) -> Iterator[PresenceEvent]:
        """Every event of a sequence of advertisements, as fast as they can be processed."""
        for adv in advertisements:
            yield from self.feed(adv)

    def run_lines(self, stream: IO[bytes], *, source: str) -> Iterator[PresenceEvent]:
        """Every event of a trace stream (one JSON advertisement per line)."""
        for number, line in numbered_lines(stream, source=source):
            adv = decode_line(line, source=source, number=number)
            yield from self.feed_fields(adv.t, adv.scanner, adv.rssi, adv.service_uuids)
            self.note_line(number)

    def note_line(self, number: int) -> None:
        """Say that the advertisement just fed came from trace line ``number``, so the first
        one out of order is known by its line (``first_late_line``)."""
        if self.late and self.first_late_line is None:
            self.first_late_line = number


def _on_wall(events: list[PresenceEvent], step: float) -> list[PresenceEvent]:
    """``events`` decided on the detector's time, stamped with wall time."""
    if not step or not events:
        return events
    return [msgspec.structs.replace(event, t=event.t + step) for event in events]


def replay_pipeline(
    members: MemberKeys, settings: PresenceSettings
) -> tuple[PresencePipeline, PresenceEngine]:
    """A pipeline (and its engine) for replaying a trace as fast as it can be read: the engine's
    clock is the trace's own time, so it decides what the live hub would have decided."""
    clock = TraceClock()
    engine = PresenceEngine(settings, clock)
    pipeline = PresencePipeline(TokenResolver(members.chain_prefix, members.keys), engine, clock)
    return pipeline, engine
