"""Staff routes of the Bluetooth LE feature: who is in the shop now, recent arrivals and
departures, the reminders decided, the arrival alerts still standing, and the health of the
store's beacon fleet."""

from __future__ import annotations

import msgspec
from aiohttp import web

from hub.reminders import recent, standing_alerts
from hub.web.common import int_query, json_response, require_staff, services


async def present(request: web.Request) -> web.Response:
    """Members inside now, with their zone and per-scanner filtered level."""
    require_staff(request)
    presence = services(request).presence
    members = msgspec.to_builtins(presence.present()) if presence else []
    return json_response({"enabled": presence is not None, "present": members})


async def presence_events(request: web.Request) -> web.Response:
    """Recent presence events, newest first (optionally of one member)."""
    require_staff(request)
    svc = services(request)
    limit = int_query(request, "limit", 100, 1, 1000)
    member = request.query.get("member")
    sql = "SELECT t, member_id AS member, event, zone FROM presence_events"
    params: tuple[object, ...] = ()
    if member:
        sql += " WHERE member_id = ?"
        params = (member,)
    rows = await svc.db.read(svc.db.query, sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
    return json_response({"events": rows})


async def reminders(request: web.Request) -> web.Response:
    """Recent reminder decisions (member messages and staff alerts, sent or held)."""
    require_staff(request)
    svc = services(request)
    limit = int_query(request, "limit", 100, 1, 1000)
    decided = await svc.db.read(recent, svc.db, limit)
    return json_response({"reminders": [r.to_json() for r in decided]})


async def arrivals(request: web.Request) -> web.Response:
    """Arrival alerts still standing: members in the store now whose ready orders the staff
    were alerted about, so a staff page opened or reloaded later shows the banners too."""
    require_staff(request)
    svc = services(request)
    presence = svc.presence
    if presence is None:
        return json_response({"enabled": False, "arrivals": []})
    inside = [(view.member, view.arrived) for view in presence.present()]
    repeat_s = presence.config.reminders.staff_repeat_after_s
    standing = await svc.db.read(standing_alerts, svc.db, inside, repeat_s)
    return json_response({"enabled": True, "arrivals": standing})


async def fleet_health(request: web.Request) -> web.Response:
    """Every declared beacon's last sighting, RSSI and battery, and the latest alerts."""
    require_staff(request)
    svc = services(request)
    health = svc.presence.health if svc.presence else None
    if health is None:
        return json_response({"enabled": False, "beacons": [], "alerts": []})
    snapshot = await svc.db.read(health.snapshot)
    return json_response({"enabled": True, **snapshot})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/presence", present)
    app.router.add_get("/api/presence/events", presence_events)
    app.router.add_get("/api/reminders", reminders)
    app.router.add_get("/api/arrivals", arrivals)
    app.router.add_get("/api/beacons/health", fleet_health)
