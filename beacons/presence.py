"""The presence engine: filtered RSSI per member and scanner -> "arrived", "zone", "left".

One stateful coordinator, fed sightings that are already resolved to a member (tokens resolved,
everything else dropped before it gets here). Time comes only from the sightings and the injected
clock, so replaying a trace at full speed decides exactly what the live hub would have decided.

How a single scanner just inside the entrance tells a member walking in from one lingering just
outside the open door (see docs/beacons.md for the physics):

* walk-in: the level climbs to a peak as the member passes the scanner (at least ``pass_dbm``),
  stays near that peak only briefly (at most ``dwell_max_s``: people walk at about 1.3 m/s), then
  falls by ``drop_db`` within ``drop_within_s`` while the member is still heard at ``inside_dbm``
  or better (inside, in line of sight, not behind the front wall). Decided within ~2-5 s of the
  door.
* close pass: a level of ``enter_dbm`` or more can only be reached right next to the scanner, so
  it is an arrival at once, unless the member has already been standing near that level longer
  than ``dwell_max_s`` (a window-shopper pressed against the door).
* window-shopper: stands at a plateau, however strong, for longer than ``dwell_max_s``; when they
  finally move it is away along the pavement, where they fade out behind the wall within seconds.

"left" follows a silence at every scanner of ``left_after_s`` (long: phones go quiet in the
background), or ``exit_after_s`` when the member was last heard walking out past an entrance."""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

import msgspec

from beacons.rssi_filter import RssiWindow
from beacons.settings import PresenceSettings, ScannerSettings

EXIT_FADE_S = 20.0  # heard this briefly after a pass = walked out, not in


class PresenceEvent(msgspec.Struct, frozen=True):
    """The DESIGN.md presence event: ``t`` is when the decision was made (trace time)."""

    t: float
    member: str
    event: str  # "arrived" | "zone" | "left"
    zone: str | None


class _Link:
    """One member at one scanner: the RSSI window and the shape of the current approach."""

    __slots__ = ("window", "last_t", "peak", "near_start", "near_last", "first_t", "level")

    def __init__(self, window_s: float) -> None:
        self.window = RssiWindow(window_s)
        self.last_t = -math.inf
        self.level = -math.inf
        self.reset(-math.inf)

    def reset(self, t: float) -> None:
        """Start a new approach: nothing heard before ``t`` shapes it."""
        self.peak = -math.inf
        self.near_start = t
        self.near_last = t
        self.first_t = t


class _Member:
    """Everything the engine knows about one member."""

    __slots__ = ("links", "present", "zone", "last_heard", "passed_at", "candidate", "since")

    def __init__(self) -> None:
        self.links: dict[str, _Link] = {}
        self.present = False
        self.zone: str | None = None
        self.last_heard = -math.inf
        self.passed_at = -math.inf
        self.candidate: str | None = None
        self.since = 0.0


class PresenceEngine:
    """Turns member sightings into presence events. Not thread-safe: one owner feeds it."""

    def __init__(self, settings: PresenceSettings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self._clock = clock
        self._scanners: dict[str, ScannerSettings] = {s.name: s for s in settings.scanners}
        self._multi_zone = len({s.zone_name for s in settings.scanners}) > 1
        self._members: dict[str, _Member] = {}
        self._deadlines: list[tuple[float, str]] = []
        self.next_deadline = math.inf
        self.unknown_scanners: dict[str, int] = {}

    # -- feeding -------------------------------------------------------------------------------

    def observe(self, member: str, scanner: str, rssi: int, t: float) -> list[PresenceEvent]:
        """One resolved sighting. Returns the events it causes (usually none)."""
        conf = self._scanners.get(scanner)
        if conf is None:
            self.unknown_scanners[scanner] = self.unknown_scanners.get(scanner, 0) + 1
            return []
        state = self._members.get(member)
        if state is None:
            state = self._members[member] = _Member()
        link = state.links.get(scanner)
        if link is None:
            link = state.links[scanner] = _Link(self.settings.window_s)
        if t - link.last_t > self.settings.encounter_gap_s:
            link.reset(t)
        link.last_t = t
        window = link.window
        window.push(t, rssi + conf.rssi_offset_db)
        if len(window) < self.settings.min_sightings:
            return []
        level = link.level = window.level()
        passed = self._track_shape(link, level, t, conf)
        if state.present:
            return self._while_present(member, state, conf, level, passed, t)
        if self._arrives(link, level, passed, t, conf):
            return [self._arrive(member, state, conf, t)]
        return []

    def expire(self, now: float) -> list[PresenceEvent]:
        """Events whose silence deadline is at or before ``now``, in time order."""
        events: list[PresenceEvent] = []
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            _, member = heapq.heappop(heap)
            state = self._members.get(member)
            if state is None or not state.present:
                continue
            due = self._deadline(state)
            if due <= now:
                events.append(PresenceEvent(due, member, "left", state.zone))
                del self._members[member]
            else:
                heapq.heappush(heap, (due, member))
        self._forget_strangers(now)
        self.next_deadline = heap[0][0] if heap else math.inf
        return events

    def tick(self) -> list[PresenceEvent]:
        """``expire`` at the injected clock's now: what a live hub calls on a timer."""
        return self.expire(self._clock())

    # -- decisions -----------------------------------------------------------------------------

    def _track_shape(self, link: _Link, level: float, t: float, conf: ScannerSettings) -> bool:
        """Update the approach's peak and dwell; True when it completes a pass (peak, brief dwell,
        then a drop while still heard inside). A pass starts a fresh approach."""
        s = self.settings
        if level > link.peak:
            if level > link.peak + s.near_peak_db:
                link.near_start = t
            link.peak = level
        if level >= link.peak - s.near_peak_db:
            link.near_last = t
            return False
        if (
            conf.role == "entrance"
            and link.peak >= conf.pass_dbm
            and level <= link.peak - s.drop_db
            and level >= conf.inside_dbm
            and link.near_last - link.near_start <= s.dwell_max_s
            and t - link.near_last <= s.drop_within_s
        ):
            link.peak = level
            link.near_start = link.near_last = t
            return True
        return False

    def _arrives(
        self, link: _Link, level: float, passed: bool, t: float, conf: ScannerSettings
    ) -> bool:
        if level < conf.enter_dbm:
            return passed
        if conf.role == "interior":
            return True
        return link.near_last - link.near_start <= self.settings.dwell_max_s

    def _arrive(
        self, member: str, state: _Member, conf: ScannerSettings, t: float
    ) -> PresenceEvent:
        state.present = True
        state.zone = conf.zone_name
        state.last_heard = t
        state.candidate = None
        self._push_deadline(member, state)
        return PresenceEvent(t, member, "arrived", state.zone)

    def _while_present(
        self,
        member: str,
        state: _Member,
        conf: ScannerSettings,
        level: float,
        passed: bool,
        t: float,
    ) -> list[PresenceEvent]:
        if level < conf.exit_dbm:
            return []
        state.last_heard = t
        if passed:
            state.passed_at = t
            self._push_deadline(member, state)
        if not self._multi_zone:
            return []
        return self._update_zone(member, state, t)

    def _update_zone(self, member: str, state: _Member, t: float) -> list[PresenceEvent]:
        """Switch zone when another zone's best fresh level beats the current zone's by the
        margin for ``zone_hold_s``."""
        s = self.settings
        best: dict[str, float] = {}
        fresh = t - s.window_s * 2
        for name, link in state.links.items():
            if link.last_t >= fresh:
                zone = self._scanners[name].zone_name
                if link.level > best.get(zone, -math.inf):
                    best[zone] = link.level
        top = max(best, key=best.__getitem__)
        current = best.get(state.zone or "", -math.inf)
        if top == state.zone or best[top] < current + s.zone_margin_db:
            state.candidate = None
            return []
        if state.candidate != top:
            state.candidate, state.since = top, t
            return []
        if t - state.since < s.zone_hold_s:
            return []
        state.zone, state.candidate = top, None
        return [PresenceEvent(t, member, "zone", top)]

    # -- silence -------------------------------------------------------------------------------

    def _deadline(self, state: _Member) -> float:
        s = self.settings
        walked_out = state.last_heard - state.passed_at <= EXIT_FADE_S
        return state.last_heard + (s.exit_after_s if walked_out else s.left_after_s)

    def _push_deadline(self, member: str, state: _Member) -> None:
        due = self._deadline(state)
        heapq.heappush(self._deadlines, (due, member))
        if due < self.next_deadline:
            self.next_deadline = due

    def _forget_strangers(self, now: float) -> None:
        """Drop members who never arrived and have not been heard for a while, so passers-by do
        not pile up in memory."""
        horizon = now - max(self.settings.encounter_gap_s, self.settings.window_s) * 4
        stale = [
            m
            for m, st in self._members.items()
            if not st.present and max(link.last_t for link in st.links.values()) < horizon
        ]
        for m in stale:
            del self._members[m]
