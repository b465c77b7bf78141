"""Middlewares: every error becomes a JSON body a person can act on (never a traceback), and
every request is counted and timed by route."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from hub.errors import HubError
from hub.storage import storage_failure
from hub.web.common import SERVICES, json_response, services

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HubError as exc:
        response = json_response(exc.to_json(), status=exc.status)
        if exc.retry_after_s is not None:
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        if exc.status == 413:
            limit = services(request).config.web.max_upload_bytes / (1024 * 1024)
            message = f"the request body is larger than {limit:g} MiB"
        elif exc.status == 404:
            message = f"nothing at {request.path}"
        elif exc.status == 405:
            message = f"{request.method} is not allowed on {request.path}"
        body = {"error": {"code": _HTTP_CODES.get(exc.status, "error"), "message": message}}
        response = json_response(body, status=exc.status)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except ConnectionResetError:  # the client went away mid-request: nobody to answer
        log.info("client left during %s %s", request.method, request.path)
        return web.Response(status=400)
    except Exception as exc:
        failure = storage_failure(exc, services(request).config.store.database)
        if failure is not None:  # the disk: one line, the health check tells the rest
            log.error("%s %s not saved: %s", request.method, request.path, exc)
            return json_response(failure.to_json(), status=failure.status)
        log.exception("unhandled error on %s %s", request.method, request.path)
        body = {"error": {"code": "internal", "message": "internal error; see the hub's log"}}
        return json_response(body, status=500)


@web.middleware
async def metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        info = request.match_info.route.resource
        route = info.canonical if info is not None else "unmatched"
        m = request.app[SERVICES].metrics
        m.http_requests.labels(request.method, route, str(status)).inc()
        m.http_latency.labels(request.method, route).observe(time.perf_counter() - started)
