"""What aiohttp does below the app, where no middleware or signal reaches: its own answers to
requests it cannot parse, and how it logs them.

Why: those answers said "Server: Python/3.11 aiohttp/3.x" (which tells anyone on the shop's
network which published flaws to try), and each unparseable request was logged as an error
with a traceback, so a client sending garbage could fill the hub's log and the journal.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web_response
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import Counter

#: What the Server header of every response says: the product, no versions.
SERVER = "retail-hub"


def name_the_server() -> None:
    """Make ``SERVER`` the Server header of every response aiohttp sends, its error answers to
    unparseable requests included (aiohttp has no setting for it; the hub's tests check the
    header on such an answer, so a change in aiohttp cannot undo this unnoticed)."""
    web_response.SERVER_SOFTWARE = SERVER


class ServerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server logger for one hub: a request aiohttp could not parse is the client's
    fault and already answered 400, so it is counted in ``malformed`` and not logged; every
    other record goes to the ``aiohttp.server`` log as before."""

    def __init__(self, malformed: Counter) -> None:
        super().__init__(logging.getLogger("aiohttp.server"), {})
        self._malformed = malformed

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if isinstance(kwargs.get("exc_info"), HttpProcessingError):
            self._malformed.inc()
            return
        super().log(level, msg, *args, **kwargs)
