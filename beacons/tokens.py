"""Private shopper tokens (DESIGN.md): a phone advertises a 128-bit service UUID made of the chain's
fixed 8-byte prefix and ``HMAC-SHA256(member_key, "rh-token" || u64be(floor(t / 512)))[:8]``.

The resolver turns such a UUID back into a member id with a few dict lookups: it precomputes the
tokens of every opted-in member for the current 512 s window and one either side (phones whose
clock is off by up to a window still resolve), makes each next window ahead of its turn (off the
event loop in the hub) and updates only the members whose key changed. Tokens it
cannot resolve are dropped here and never stored or logged, which is what keeps walkers-by and
non-members anonymous."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from uuid import UUID

from beacons.errors import MembersFileError

WINDOW_S = 512
#: Windows a token can be made for: the counter is an unsigned 64-bit number.
WINDOWS = range(2**64)
TOKEN_LABEL = b"rh-token"
PREFIX_BYTES = 8
KEY_BYTES = 16
_log = logging.getLogger(__name__)


def window_of(t: float) -> int:
    """The token window containing Unix time ``t``."""
    return int(t // WINDOW_S)


def token(member_key: bytes, window: int) -> bytes:
    """The 8 token bytes a member's phone advertises during ``window``."""
    return hmac.digest(member_key, TOKEN_LABEL + window.to_bytes(8, "big"), "sha256")[:8]


def token_uuid(chain_prefix: bytes, member_key: bytes, window: int) -> str:
    """The service UUID string (lowercase, as bleak reports it) for a member in ``window``."""
    return str(UUID(bytes=chain_prefix + token(member_key, window)))


def canonical(service_uuid: str) -> str:
    """A 128-bit UUID written as bleak writes it (lowercase, dashed), from capitals or from 32
    bare hex digits as other recorders write it; anything else is returned unchanged."""
    text = service_uuid.strip().lower()
    if len(text) == 32 and "-" not in text:
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return text


def _hex(text: str) -> bytes:
    """Hex digits as bytes, in either case, also written UUID-style with dashes or with "0x"."""
    digits = text.strip().replace("-", "")
    return bytes.fromhex(digits[2:] if digits[:2].lower() == "0x" else digits)


def parse_prefix(text: str) -> bytes:
    """Decode the chain prefix (16 hex digits). Raises MembersFileError if it is not."""
    try:
        prefix = _hex(text)
    except ValueError as exc:
        raise MembersFileError(f"chain prefix must be 16 hex digits, got {text!r}") from exc
    if len(prefix) != PREFIX_BYTES:
        raise MembersFileError(f"chain prefix must be 16 hex digits, got {text!r}")
    return prefix


def parse_key(member: str, text: str) -> bytes:
    """Decode a member key (32 hex digits). Raises MembersFileError naming the member."""
    try:
        key = _hex(text)
    except ValueError as exc:
        raise MembersFileError(f"member {member!r}: key must be 32 hex digits") from exc
    if len(key) != KEY_BYTES:
        raise MembersFileError(f"member {member!r}: key must be 32 hex digits, got {len(key) * 2}")
    return key


class TokenResolver:
    """Maps advertised service UUIDs to member ids for the windows around the latest time seen.

    The table only moves forward: an advertisement a little older than the newest one (several
    scanners relaying out of order) is looked up in the same table, which still holds the two
    windows before the newest, so a phone a window behind is recognised in a late advertisement
    too. A jump back by more than one window (a new recording) rebuilds around the older time.
    Each token still resolves only within one window of the advertisement's own time.
    Times before the first window (a trace in seconds from 0) simply have no previous window.

    Cost: the table is one dict of tokens per window. ``set_keys`` touches only the members
    whose key was added, changed or removed (a few HMACs each, per window held), so an opt-in or
    a withdrawal among 50,000 members costs milliseconds, not a rebuild. Whole windows (start-up,
    a window turn) are made by ``prepare``, off the event loop, before they are needed;
    ``resolve`` builds a missing window itself only when nothing prepared it (a replay, a clock
    jump, code without an event loop) so that a lookup is never wrong.

    Threads: the resolver is used from one thread (the event loop: ``resolve``, ``set_keys``,
    ``prepare``). Only ``prepare``'s token computation runs on a worker thread, and it reads
    nothing but its own arguments: the key dict in force when it began, which is never changed
    in place (``set_keys`` replaces it). The finished window is corrected for key changes made
    meanwhile and swapped in on the loop, so a withdrawn member's token never comes back with
    it.

    Withdrawal timing: a member left out of ``set_keys`` stops resolving when ``set_keys``
    returns, in every window held or being prepared; the hub calls it as soon as the member
    table's change is read (one database read after the change is committed)."""

    def __init__(self, chain_prefix: bytes, keys: Mapping[str, bytes] | None = None) -> None:
        if len(chain_prefix) != PREFIX_BYTES:
            raise MembersFileError(f"chain prefix must be {PREFIX_BYTES} bytes")
        self._prefix = chain_prefix
        self._uuid_head = str(UUID(bytes=chain_prefix + bytes(8)))[:18] + "-"
        self._keys: dict[str, bytes] = {}
        self._center: int | None = None
        #: window -> {token uuid: member}; the windows held are around ``_center`` plus any
        #: prepared ahead of it.
        self._windows: dict[int, dict[str, str]] = {}
        self.set_keys(keys or {})

    @property
    def prefix_text(self) -> str:
        """The chain prefix as it appears at the start of a token UUID (``xxxxxxxx-xxxx-xxxx``)."""
        return self._uuid_head[:18]

    @property
    def member_count(self) -> int:
        """How many opted-in members the resolver can recognise."""
        return len(self._keys)

    def set_keys(self, keys: Mapping[str, bytes]) -> None:
        """Replace the opted-in members (id -> 16-byte key), e.g. after the member table changed
        or sync delivered new keys. Only members whose key was added, changed or removed have
        their tokens recomputed; members left out stop resolving immediately."""
        for member, key in keys.items():
            if len(key) != KEY_BYTES:
                raise MembersFileError(f"member {member!r}: key must be {KEY_BYTES} bytes")
        # Two members with one key advertise the same tokens: whichever the table kept would
        # be told of the other's visits. Neither is recognised until the keys are put right.
        shared: set[bytes] = set()
        if len(set(keys.values())) < len(keys):
            shared = {key for key, count in Counter(keys.values()).items() if count > 1}
        if shared:
            ambiguous = sorted(member for member, key in keys.items() if key in shared)
            _log.warning(
                "members %s share a beacon key; none of them is recognised until each has "
                "their own",
                ", ".join(ambiguous),
            )
        new = {member: key for member, key in keys.items() if key not in shared}
        gone, added = _changes(self._keys, new)
        self._keys = new
        for window, table in self._windows.items():
            self._patch(table, window, gone, added)

    def resolve(self, service_uuid: str, t: float) -> str | None:
        """The member advertising ``service_uuid`` at time ``t``, or None (then drop it)."""
        window = int(t // WINDOW_S)
        center = self._center
        if center is None or window > center or window < center - 1:
            self._move(window)
        windows = self._windows
        for w in (window, window - 1, window + 1):
            table = windows.get(w)
            if table is not None:
                member = table.get(service_uuid)
                if member is not None:
                    return member
        return None

    def wanted(self, t: float) -> list[int]:
        """The windows to hold around Unix time ``t``: those a lookup at ``t`` reads (two before,
        one after) and the next one after, ready for the turn."""
        center = int(t // WINDOW_S)
        return [w for w in range(center - 2, center + 3) if w in WINDOWS]

    def ready(self, t: float) -> bool:
        """Whether every window ``prepare(t)`` makes is made (a lookup up to the next turn
        after ``t`` then builds nothing)."""
        return all(window in self._windows for window in self.wanted(t))

    async def prepare(
        self,
        t: float,
        run: Callable[..., Awaitable[dict[str, str]]] = asyncio.to_thread,
    ) -> int:
        """Make the windows around ``t`` not yet held (see ``wanted``) on a worker thread
        (``run``) and swap each in when finished; returns how many were made. Call it on the
        event loop, at start-up and soon after each window turn: lookups then never build."""
        made = 0
        for window in self.wanted(t):
            if window in self._windows:
                continue
            keys = self._keys
            table = await run(_window_table, self._uuid_head, keys, window)
            if window in self._windows:
                continue  # a lookup needed it first and built it
            self._patch(table, window, *_changes(keys, self._keys))
            self._windows[window] = table
            made += 1
        self._forget(int(t // WINDOW_S))
        return made

    def _move(self, center: int) -> None:
        """Hold the windows a lookup around ``center`` reads, building any missing here."""
        for window in range(center - 2, center + 2):
            if window in WINDOWS and window not in self._windows:
                self._windows[window] = _window_table(self._uuid_head, self._keys, window)
        self._center = center
        self._forget(center)

    def _forget(self, now: int) -> None:
        """Drop windows neither the lookups (around ``_center``) nor ``prepare`` (around
        ``now``) need: at most nine are held."""
        keep = set(range(now - 2, now + 3))
        if self._center is not None:
            keep.update(range(self._center - 2, self._center + 2))
        for window in [w for w in self._windows if w not in keep]:
            del self._windows[window]

    def _patch(
        self,
        table: dict[str, str],
        window: int,
        gone: list[tuple[str, bytes]],
        added: list[tuple[str, bytes]],
    ) -> None:
        """Take the ``gone`` (member, key) pairs out of window ``window``'s ``table`` and put the
        ``added`` ones in (see ``_changes``)."""
        head = self._uuid_head
        for member, key in gone:
            uuid = _uuid(head, key, window)
            if table.get(uuid) == member:
                del table[uuid]
        for member, key in added:
            table[_uuid(head, key, window)] = member


def _changes(
    old: dict[str, bytes], new: dict[str, bytes]
) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]:
    """The (member, key) pairs of ``old`` that ``new`` lacks and those it adds: a member whose
    key changed is in both, one withdrawn only in the first, one added only in the second."""
    if old is new:
        return [], []
    return [item for item in old.items() if new.get(item[0]) != item[1]], [
        item for item in new.items() if old.get(item[0]) != item[1]
    ]


def _uuid(head: str, key: bytes, window: int) -> str:
    """``token_uuid`` with the prefix already written out (``head``): the hot loop of a build."""
    text = hmac.digest(key, TOKEN_LABEL + window.to_bytes(8, "big"), "sha256")[:8].hex()
    return f"{head}{text[:4]}-{text[4:]}"


def _window_table(head: str, keys: Mapping[str, bytes], window: int) -> dict[str, str]:
    """Every member's token in ``window`` -> member (pure: safe on a worker thread)."""
    return {_uuid(head, key, window): member for member, key in keys.items()}
