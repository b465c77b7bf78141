"""Wrong staff tokens: a device that keeps sending them is made to wait before it may try again,
so the token cannot be guessed at network speed. Staff tokens may be as short as 16 characters;
without a wait a device on the store network could try thousands a second."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from hub.clock import Clock
from hub.errors import TooManyAttempts

#: Wrong tokens a device may send before any wait: enough for a person mistyping.
FREE_MISSES = 10
#: The wait after the first miss past the free ones; it doubles with each further miss.
FIRST_WAIT_S = 30.0
LONGEST_WAIT_S = 300.0
#: A device that sent no wrong token for this long starts afresh.
FORGET_AFTER_S = 3600.0
#: Devices remembered at once; the one heard from least recently is forgotten first, so a flood
#: of addresses costs bounded memory (and each address still waits its own turn while kept).
MAX_DEVICES = 1024


@dataclass
class _Misses:
    count: int
    last: float


class TokenGuesses:
    """Wrong tokens per device (its address, ``client_address``), on the hub's clock."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._devices: OrderedDict[str, _Misses] = OrderedDict()

    def check(self, device: str) -> None:
        """Raise ``TooManyAttempts`` while ``device`` must wait; its token is not even compared
        then, so waiting cannot be skipped by guessing right."""
        misses = self._current(device)
        if misses is None or misses.count <= FREE_MISSES:
            return
        wait = min(LONGEST_WAIT_S, FIRST_WAIT_S * 2 ** (misses.count - FREE_MISSES - 1))
        left = misses.last + wait - self._clock.monotonic()
        if left > 0:
            raise TooManyAttempts(left)

    def missed(self, device: str) -> None:
        """Count a wrong token from ``device``."""
        misses = self._current(device) or _Misses(0, 0.0)
        misses.count += 1
        misses.last = self._clock.monotonic()
        self._devices[device] = misses
        self._devices.move_to_end(device)
        while len(self._devices) > MAX_DEVICES:
            self._devices.popitem(last=False)

    def passed(self, device: str) -> None:
        """The right token from ``device``: its count starts again."""
        self._devices.pop(device, None)

    def _current(self, device: str) -> _Misses | None:
        misses = self._devices.get(device)
        if misses is not None and self._clock.monotonic() - misses.last > FORGET_AFTER_S:
            del self._devices[device]
            return None
        return misses
