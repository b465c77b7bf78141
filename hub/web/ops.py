"""Operations endpoints: liveness with the database checked, and Prometheus metrics."""

from __future__ import annotations

from aiohttp import web

from hub.web.common import json_response, services


async def healthz(request: web.Request) -> web.Response:
    svc = services(request)
    try:
        await svc.db.read(svc.db.query, "SELECT 1")
        db_ok = True
    except Exception:  # noqa: BLE001 - any database failure means unhealthy
        db_ok = False
    body = {"status": "ok" if db_ok else "failing", "store": svc.config.store.id,
            "database": "ok" if db_ok else "unreachable"}
    return json_response(body, status=200 if db_ok else 503)


async def metrics(request: web.Request) -> web.Response:
    svc = services(request)
    return web.Response(body=await svc.db.read(svc.metrics.render),
                        content_type="text/plain", charset="utf-8")


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
