"""The presence engine: filtered RSSI per member and scanner -> "arrived", "zone", "left".

One stateful coordinator, fed sightings already resolved to a member (tokens resolved, everything
else dropped before it gets here). Time comes only from the sightings and the injected clock, so
replaying a trace at full speed decides exactly what the live hub would have decided.

A scanner just inside the entrance hears someone standing in the open doorway about as strongly as
someone walking in, so an entrance scanner does not decide on level alone (beacons/README.md has the
physics, the figures and why one door scanner cannot reach the targets). A member arrives when:

* walk-in (entrance): the approach peaks at ``pass_dbm`` or more (the second-highest reading of the
  window, so the one second at the scanner is not averaged away), stays near that peak no longer
  than ``dwell_max_s``, the median then falls ``drop_db`` below it within ``drop_within_s``, and
  from that fall stays at ``inside_dbm`` or more (by default any reading: still heard) for
  ``hold_s`` without a silence over ``hold_gap_s``; it is announced when the member is heard
  again ``confirm_s`` later, at any scanner (someone walking on along the front can show that
  shape too, but is out of range 20-30 s on; someone inside is not, even when heard only weakly
  from deep in the shop).
* interior (interior scanner): the median holds at ``enter_dbm`` or more, and ``lead_db`` above the
  member's strongest door-scanner level when set, for ``interior_hold_s``.
* settled (entrance): the member left their peak without the walk-in pattern (looked in from the
  doorway first) and is still heard at ``inside_dbm`` ``settle_s`` later while moving about.
* stayed (entrance, interior): heard at that scanner for ``stay_s`` with no silence longer than
  ``stay_gap_s`` (a phone that was quiet at the door).

A ``doorway`` scanner (a door scanner in a store with interior scanners) decides no arrival: it
keeps members present, notices them walking out, and is the reference for ``lead_db``.

A window-shopper stands at a plateau, however strong, for longer than ``dwell_max_s`` and, when they
leave, fades out behind the front wall within seconds: the walk-in and settled rules do not
fire; one who lingers longer than ``stay_s`` does fire the backstop. No level at an entrance
scanner is an arrival by itself, however strong: on held-out simulated stores a rule that took
anyone within about a metre of the door scanner at once ("close") took 57 passers-by and
window-shoppers for 12 members, all of whom the walk-in rule found as well.

"left" follows silence at every scanner for ``left_after_s`` (long: phones go quiet in the
background), or ``exit_after_s`` when the member was last heard walking out past an entrance."""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable

import msgspec

from beacons.rssi_filter import RssiWindow
from beacons.settings import PresenceSettings, ScannerSettings

EXIT_FADE_S = 20.0  # silence this soon after a pass at an entrance = walked out
GC_EVERY_S = 60.0


class PresenceEvent(msgspec.Struct, frozen=True):
    """The DESIGN.md presence event; ``t`` is when the decision was made (trace time)."""

    t: float
    member: str
    event: str  # "arrived" | "zone" | "left"
    zone: str | None


class LinkView(msgspec.Struct, frozen=True):
    """What the staff screen shows for one member at one scanner."""

    scanner: str
    level_dbm: float
    spread_db: float
    last_seen: float


class MemberView(msgspec.Struct, frozen=True):
    """A present member as the staff screen shows them."""

    member: str
    zone: str | None
    arrived: float
    last_seen: float
    links: list[LinkView]

    def moved(self, seconds: float, arrived: float | None = None) -> MemberView:
        """This view with every time ``seconds`` later (the engine's time to wall time), and
        ``arrived``, when given, as the arrival was stamped then."""
        arrived = self.arrived + seconds if arrived is None else arrived
        if not seconds and arrived == self.arrived:
            return self
        links = [msgspec.structs.replace(k, last_seen=k.last_seen + seconds) for k in self.links]
        return msgspec.structs.replace(self, arrived=arrived, last_seen=self.last_seen + seconds,
                                       links=links)


class _Link:
    """One member at one scanner: the filter window and the shape of the current approach."""

    __slots__ = (
        "window",
        "last_t",
        "level",
        "peak",
        "near_start",
        "near_last",
        "away_since",
        "recent",
        "held_since",  # since when the arrival condition has held: the fall, or interior level
        "session_start",  # start of the current stretch heard without a stay_gap_s silence
    )

    def __init__(self, window_s: float) -> None:
        self.window = RssiWindow(window_s)
        self.last_t = -math.inf
        self.level = -math.inf
        self.session_start = -math.inf
        self.recent: deque[tuple[float, float, float]] = deque()  # (t, top, median)
        self.reset(-math.inf)

    def reset(self, t: float) -> None:
        """Start a new approach: nothing heard before ``t`` shapes it."""
        self.peak = -math.inf
        self.near_start = t
        self.near_last = t
        self.away_since = math.inf
        self.held_since = math.inf
        self.recent.clear()


class _Member:
    """Everything the engine knows about one member."""

    __slots__ = (
        "links",
        "present",
        "zone",
        "arrived",
        "last_heard",
        "passed_at",
        "candidate",
        "candidate_since",
        "walked_in",
    )

    def __init__(self) -> None:
        self.links: dict[str, _Link] = {}
        self.present = False
        self.zone: str | None = None
        self.arrived = 0.0
        self.last_heard = -math.inf
        self.passed_at = -math.inf
        self.candidate: str | None = None
        self.candidate_since = 0.0
        self.walked_in = math.inf  # when a walk-in waiting for confirm_s was seen


class PresenceEngine:
    """Turns member sightings into presence events. Not thread-safe: one owner feeds it."""

    def __init__(self, settings: PresenceSettings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self._clock = clock
        self._scanners: dict[str, ScannerSettings] = {s.name: s for s in settings.scanners}
        self._multi_zone = len({s.zone_name for s in settings.scanners}) > 1
        self._history_s = max(settings.dwell_max_s + settings.window_s, settings.settle_s)
        self._members: dict[str, _Member] = {}
        self._deadlines: list[tuple[float, str]] = []
        self._next_gc = -math.inf
        self.next_deadline = -math.inf
        self.unknown_scanners: dict[str, int] = {}
        self.arrivals_by_rule: dict[str, int] = {}  # which rule decided each arrival

    # -- feeding -------------------------------------------------------------------------------

    def observe(self, member: str, scanner: str, rssi: int, t: float) -> list[PresenceEvent]:
        """One resolved sighting at time ``t``. Returns the events it causes (usually none)."""
        conf = self._scanners.get(scanner)
        if conf is None:
            self.unknown_scanners[scanner] = self.unknown_scanners.get(scanner, 0) + 1
            return []
        s = self.settings
        state = self._members.get(member)
        if state is None:
            state = self._members[member] = _Member()
        link = state.links.get(scanner)
        if link is None:
            link = state.links[scanner] = _Link(s.window_s)
        if t - link.last_t > s.encounter_gap_s:
            link.reset(t)
        gap = t - link.last_t
        if gap > s.stay_gap_s:
            link.session_start = t
        link.last_t = t
        window = link.window
        window.push(t, rssi + conf.rssi_offset_db)
        if len(window) < s.min_sightings:
            return []
        level, top = window.level_and_top()
        link.level = level
        passed = self._track_shape(link, top, level, t, gap, conf)
        if level < conf.exit_dbm:
            return []
        if t - state.last_heard > s.stay_gap_s:
            state.walked_in = math.inf  # walked past and away
        # A sighting relayed late (older than one from another scanner) must not move the
        # silence deadline back: the member was heard at the newer time.
        state.last_heard = max(state.last_heard, t)
        if state.present:
            return self._while_present(member, state, passed, t)
        rule = self._confirmed(state, self._arrives(state, link, level, passed, t, conf), t)
        if rule is not None:
            self.arrivals_by_rule[rule] = self.arrivals_by_rule.get(rule, 0) + 1
            return [self._arrive(member, state, conf, t)]
        return []

    def expire(self, now: float) -> list[PresenceEvent]:
        """'left' events whose silence deadline is at or before ``now``, in time order."""
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
        if now >= self._next_gc:
            self._forget_strangers(now)
            self._next_gc = now + GC_EVERY_S
        self.next_deadline = min(heap[0][0] if heap else math.inf, self._next_gc)
        return events

    def tick(self) -> list[PresenceEvent]:
        """``expire`` at the injected clock's now: what the live hub calls on a timer."""
        return self.expire(self._clock())

    def present(self) -> list[MemberView]:
        """Members currently inside, for the staff screen."""
        out = []
        for member, state in self._members.items():
            if state.present:
                links = [
                    LinkView(name, link.level, link.window.spread(), link.last_t)
                    for name, link in state.links.items()
                    if len(link.window)
                ]
                out.append(MemberView(member, state.zone, state.arrived, state.last_heard, links))
        return out

    # -- arrival -------------------------------------------------------------------------------

    def _track_shape(
        self, link: _Link, top: float, level: float, t: float, gap: float, conf: ScannerSettings
    ) -> bool:
        """Follow the approach's peak (of ``top``), how long it stayed near the peak and when the
        median left it; True when this reading completes a walk-in pass. A pass starts a fresh
        approach, so walking back out past the scanner is a second pass."""
        s = self.settings
        recent = link.recent
        recent.append((t, top, level))
        horizon = t - self._history_s
        while recent[0][0] < horizon:
            recent.popleft()
        if top > link.peak:
            link.peak = top
            link.near_start = self._band_start(recent, top - s.near_peak_db)
        if top >= link.peak - s.near_peak_db:
            link.near_last = t
            link.away_since = math.inf
            return False
        dropped = level <= link.peak - s.drop_db
        if dropped and link.away_since == math.inf:
            link.away_since = t
        if conf.role == "interior":
            return False
        if link.held_since == math.inf:
            if (
                dropped
                and link.peak >= conf.pass_dbm
                and level >= conf.inside_dbm
                and link.near_last - link.near_start <= s.dwell_max_s
                and t - link.near_last <= s.drop_within_s
            ):
                link.held_since = t
            else:
                return False
        if gap > s.hold_gap_s or level < conf.inside_dbm:
            link.held_since = math.inf  # faded out behind the front wall: walked past
            return False
        if t - link.held_since < s.hold_s:
            return False
        link.peak = top
        link.near_start = link.near_last = t
        link.away_since = link.held_since = math.inf
        return True

    @staticmethod
    def _band_start(recent: deque[tuple[float, float, float]], floor: float) -> float:
        """First time in the kept history the peak statistic reached ``floor``: a walk-in rises
        through the band within a second or two, a window-shopper's plateau has been touching it
        since they stopped."""
        for t, top, _ in recent:
            if top >= floor:
                return t
        return recent[-1][0]

    def _arrives(
        self,
        state: _Member,
        link: _Link,
        level: float,
        passed: bool,
        t: float,
        conf: ScannerSettings,
    ) -> str | None:
        """The name of the rule that makes this reading an arrival, or None."""
        s = self.settings
        if conf.role == "doorway":
            return None
        if s.stay_s and t - link.session_start >= s.stay_s:
            return "stayed"
        if conf.role == "interior":
            if level < conf.enter_dbm or (
                conf.lead_db is not None and level < self._entrance_level(state, t) + conf.lead_db
            ):
                link.held_since = math.inf
                return None
            if link.held_since == math.inf:
                link.held_since = t
            return "interior" if t - link.held_since >= s.interior_hold_s else None
        if passed:
            return "walk-in"
        if (
            level >= conf.inside_dbm
            and s.settle_s
            and t - link.away_since >= s.settle_s
            and self._moving(link, t - s.settle_s)
        ):
            return "settled"
        return None

    def _confirmed(self, state: _Member, rule: str | None, t: float) -> str | None:
        """The rule to announce now: a walk-in waits until the member is heard ``confirm_s``
        after it (a passer-by along a glass front fades out within 20-30 s, a member inside
        stays in range); every other rule is announced at once."""
        confirm_s = self.settings.confirm_s
        if rule == "walk-in" and confirm_s:
            state.walked_in = min(state.walked_in, t)
            rule = None
        if rule is None and t - state.walked_in >= confirm_s:
            return "walk-in"
        return rule

    def _entrance_level(self, state: _Member, t: float) -> float:
        """The member's strongest fresh level at any entrance or doorway scanner (-inf when
        none)."""
        fresh = t - 2 * self.settings.window_s
        return max(
            (
                link.level
                for name, link in state.links.items()
                if link.last_t >= fresh and self._scanners[name].role != "interior"
            ),
            default=-math.inf,
        )

    def _moving(self, link: _Link, since: float) -> bool:
        """Whether the median moved over more than ``settle_range_db`` since ``since``."""
        levels = sorted(level for t, _, level in link.recent if t >= since)
        n = len(levels)
        return n >= 4 and levels[(9 * n) // 10] - levels[n // 10] >= self.settings.settle_range_db

    def _arrive(
        self, member: str, state: _Member, conf: ScannerSettings, t: float
    ) -> PresenceEvent:
        state.present = True
        state.zone = conf.zone_name
        state.arrived = t
        state.candidate = None
        state.walked_in = math.inf
        state.passed_at = -math.inf
        self._push_deadline(member, state)
        return PresenceEvent(t, member, "arrived", state.zone)

    # -- while inside --------------------------------------------------------------------------

    def _while_present(
        self, member: str, state: _Member, passed: bool, t: float
    ) -> list[PresenceEvent]:
        if passed:
            state.passed_at = t
            self._push_deadline(member, state)
        if not self._multi_zone:
            return []
        return self._update_zone(member, state, t)

    def _update_zone(self, member: str, state: _Member, t: float) -> list[PresenceEvent]:
        """Move to another zone when its best fresh level beats the current zone's by
        ``zone_margin_db`` for ``zone_hold_s``."""
        s = self.settings
        best: dict[str, float] = {}
        fresh = t - 2 * s.window_s
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
            state.candidate, state.candidate_since = top, t
            return []
        if t - state.candidate_since < s.zone_hold_s:
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
        self.next_deadline = min(self.next_deadline, due)

    def _forget_strangers(self, now: float) -> None:
        """Drop members who never arrived and have not been heard for longer than any rule looks
        back, so passers-by do not pile up in memory."""
        s = self.settings
        horizon = now - max(s.stay_gap_s, s.encounter_gap_s, self._history_s)
        stale = [
            m
            for m, st in self._members.items()
            if not st.present
            and st.last_heard < horizon
            and all(link.last_t < horizon for link in st.links.values())
        ]
        for m in stale:
            del self._members[m]
