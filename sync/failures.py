"""Logging a failure that repeats, once rather than once a try.

The sync agent tries again what fails: the shop sends a command again until the hub has applied
it, the ack task records an ack until it sticks. That is what makes the link recover on its own,
but while the cause lasts (the hub's disk full or read-only for minutes) logging every try with
its traceback filled the log with the same kilobyte: one ack's traceback every second, one per
resend of every pending order. :class:`FailureLog` keeps what an operator needs: the first
failure of each kind with its traceback, a count at most every ``summary_every_s``, and one line
when the place works again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

#: Kinds of failure remembered in one run of failures; beyond them a new kind is only counted,
#: so exceptions whose text differs every time cannot grow the set (or the log) without end.
MAX_KINDS = 10


class FailureLog:
    """The failures of one place (``what``, e.g. "recording acks"), logged without flooding.

    A failure of a kind (exception type and text) new in the current run of failures is logged
    at ERROR with its traceback; repeats are counted, and a repeat at least ``summary_every_s``
    after the last line logs one line with the count. The first success after failures logs one
    INFO line and starts afresh. Time is the caller's ``monotonic`` clock, so tests move it.
    """

    def __init__(self, logger: logging.Logger, what: str, monotonic: Callable[[], float],
                 summary_every_s: float = 60.0) -> None:
        self.logger = logger
        self.what = what
        self.monotonic = monotonic
        self.summary_every_s = summary_every_s
        self.failures = 0  # in the current run of failures
        self._kinds: set[tuple[str, str]] = set()
        self._first_at = 0.0
        self._logged_at = 0.0

    def failed(self, exc: BaseException, message: str, *args: object) -> None:
        """``exc`` happened: log ``message % args`` with its traceback if its kind is new here,
        else count it (and say the count if the last line is ``summary_every_s`` old)."""
        now = self.monotonic()
        if not self.failures:
            self._first_at = now
        self.failures += 1
        kind = (type(exc).__name__, str(exc))
        if kind not in self._kinds and len(self._kinds) < MAX_KINDS:
            self._kinds.add(kind)
            self.logger.error(message, *args, exc_info=exc)
            self._logged_at = now
        elif now - self._logged_at >= self.summary_every_s:
            self.logger.error("%s still failing: %s in %.0f s (the last: %s: %s)", self.what,
                              _failures(self.failures), now - self._first_at, *kind)
            self._logged_at = now

    def succeeded(self) -> None:
        """The place worked: after failures say so once, and start afresh."""
        if not self.failures:
            return
        self.logger.info("%s works again after %s in %.0f s", self.what,
                         _failures(self.failures), self.monotonic() - self._first_at)
        self.failures = 0
        self._kinds.clear()


def _failures(count: int) -> str:
    return f"{count} failure" if count == 1 else f"{count} failures"
