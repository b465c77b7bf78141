"""Private shopper tokens (DESIGN.md): a phone advertises a 128-bit service UUID made of the chain's
fixed 8-byte prefix and ``HMAC-SHA256(member_key, "rh-token" || u64be(floor(t / 512)))[:8]``.

The resolver turns such a UUID back into a member id with one dict lookup: it precomputes the
tokens of every opted-in member for the current 512 s window and one either side (phones whose
clock is off by up to a window still resolve), and recomputes only when the window turns. Tokens it
cannot resolve are dropped here and never stored or logged, which is what keeps walkers-by and
non-members anonymous."""

from __future__ import annotations

import hmac
import logging
from collections import Counter
from collections.abc import Mapping
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
    Times before the first window (a trace in seconds from 0) simply have no previous window."""

    def __init__(self, chain_prefix: bytes, keys: Mapping[str, bytes] | None = None) -> None:
        if len(chain_prefix) != PREFIX_BYTES:
            raise MembersFileError(f"chain prefix must be {PREFIX_BYTES} bytes")
        self._prefix = chain_prefix
        self._keys: dict[str, bytes] = {}
        self._center: int | None = None
        self._by_window: dict[int, dict[str, str]] = {}
        self._table: dict[str, tuple[str, int]] = {}
        self.set_keys(keys or {})

    @property
    def prefix_text(self) -> str:
        """The chain prefix as it appears at the start of a token UUID (``xxxxxxxx-xxxx-xxxx``)."""
        return str(UUID(bytes=self._prefix + bytes(8)))[:18]

    @property
    def member_count(self) -> int:
        """How many opted-in members the resolver can recognise."""
        return len(self._keys)

    def set_keys(self, keys: Mapping[str, bytes]) -> None:
        """Replace the opted-in members (id -> 16-byte key), e.g. after the member table changed
        or sync delivered new keys. Members left out stop resolving immediately."""
        for member, key in keys.items():
            if len(key) != KEY_BYTES:
                raise MembersFileError(f"member {member!r}: key must be {KEY_BYTES} bytes")
        # Two members with one key advertise the same tokens: whichever the table kept would
        # be told of the other's visits. Neither is recognised until the keys are put right.
        shared = {key for key, count in Counter(keys.values()).items() if count > 1}
        if shared:
            ambiguous = sorted(member for member, key in keys.items() if key in shared)
            _log.warning(
                "members %s share a beacon key; none of them is recognised until each has "
                "their own",
                ", ".join(ambiguous),
            )
        self._keys = {member: key for member, key in keys.items() if key not in shared}
        self._by_window.clear()
        if self._center is not None:
            self._rebuild(self._center)

    def resolve(self, service_uuid: str, t: float) -> str | None:
        """The member advertising ``service_uuid`` at time ``t``, or None (then drop it)."""
        window = int(t // WINDOW_S)
        center = self._center
        if center is None or window > center or window < center - 1:
            self._rebuild(window)
        hit = self._table.get(service_uuid)
        if hit is None or abs(hit[1] - window) > 1:
            return None
        return hit[0]

    def _rebuild(self, center: int) -> None:
        wanted = [w for w in range(center - 2, center + 2) if w in WINDOWS]
        self._by_window = {w: self._by_window.get(w) or self._window_table(w) for w in wanted}
        self._table = {
            uuid: (member, w) for w in wanted for uuid, member in self._by_window[w].items()
        }
        self._center = center

    def _window_table(self, window: int) -> dict[str, str]:
        return {token_uuid(self._prefix, key, window): member for member, key in self._keys.items()}
