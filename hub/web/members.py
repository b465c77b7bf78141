"""Staff members API: who is known to this store and who opted in (never their keys)."""

from __future__ import annotations

from aiohttp import web

from hub.web.common import int_query, json_response, require_staff, services


async def list_members(request: web.Request) -> web.Response:
    require_staff(request)
    svc = services(request)
    limit = int_query(request, "limit", 500, 1, 5000)
    members = await svc.db.read(svc.members.list, limit)
    return json_response({"members": [m.to_json() for m in members]})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/members", list_members)
