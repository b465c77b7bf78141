"""Operations endpoints: liveness with the database checked, and Prometheus metrics."""

from __future__ import annotations

from aiohttp import web

from hub.web.common import json_response, services


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the database answers, and what the hub is given can be kept (a full or
    read-only disk, or a database file removed under the hub, is failing too)."""
    svc = services(request)
    database = svc.storage_problem() or "ok"
    try:
        await svc.db.read(svc.db.query, "SELECT 1")
    except Exception:  # noqa: BLE001 - any database failure means unhealthy
        database = "unreachable" if database == "ok" else database
    body = {"status": "ok" if database == "ok" else "failing", "store": svc.config.store.id,
            "database": database}
    return json_response(body, status=200 if database == "ok" else 503)


async def metrics(request: web.Request) -> web.Response:
    svc = services(request)
    return web.Response(body=await svc.db.read(svc.metrics.render),
                        content_type="text/plain", charset="utf-8")


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
