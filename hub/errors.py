"""Errors the hub reports to people. Each carries a stable ``code`` for programs and a ``message``
for a person, and maps to one HTTP status, so the web layer never has to guess."""

from __future__ import annotations

from typing import Any


class HubError(Exception):
    """Base of every error that is the caller's to fix (bad input, wrong state, missing thing)."""

    status = 400
    code = "bad_request"
    #: Seconds the caller should wait before trying again (sent as Retry-After), when known.
    retry_after_s: int | None = None

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}


class InvalidInput(HubError):
    """The request or file is malformed or breaks a rule on its values."""

    status = 400
    code = "invalid"


class Unauthorized(HubError):
    """No valid staff token."""

    status = 401
    code = "unauthorized"


class Forbidden(HubError):
    """A request the hub will not serve whoever sends it (a page of another site)."""

    status = 403
    code = "forbidden"


class NotFound(HubError):
    """The named product, order or member does not exist."""

    status = 404
    code = "not_found"


class Conflict(HubError):
    """The request is well formed but the current state forbids it (e.g. an illegal transition)."""

    status = 409
    code = "conflict"


class TooSlow(HubError):
    """The request's body arrived too slowly to be worth its place. 400, not 408: browsers send a
    request answered 408 again by themselves, so the person would never see why."""

    status = 400
    code = "too_slow"


class TooLarge(HubError):
    """The body or file is larger than allowed."""

    status = 413
    code = "too_large"


class UnsupportedMedia(HubError):
    """The body's content type is not one this endpoint reads."""

    status = 415
    code = "unsupported_media_type"


class Unavailable(HubError):
    """A component the request needs is not loaded (e.g. no speech model installed)."""

    status = 503
    code = "unavailable"


class TooManyAttempts(HubError):
    """A device sent too many wrong staff tokens and must wait before it tries again."""

    status = 429
    code = "too_many_attempts"

    def __init__(self, wait_s: float) -> None:
        self.retry_after_s = max(1, round(wait_s))
        seconds = self.retry_after_s
        if seconds >= 120:
            when = f"{round(seconds / 60)} minutes"
        else:
            when = "1 second" if seconds == 1 else f"{seconds} seconds"
        super().__init__(f"too many wrong staff tokens from this device: try again in {when}",
                         details={"retry_after_s": seconds})


class Busy(HubError):
    """The hub has as much of this kind of work waiting as it takes; the sender tries later."""

    status = 429
    code = "busy"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message, details={"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s
