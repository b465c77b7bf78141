"""Store health for staff: disk space, the sync link, the search models and the beacon fleet,
each read from whatever this hub runs; a feature that is off or absent says so instead of failing
the whole answer."""

from __future__ import annotations

import shutil
import sqlite3
from typing import Any

from aiohttp import web

from hub.clock import DAY_S
from hub.errors import Unavailable
from hub.outbox import backlog
from hub.services import Services
from hub.storage import read_only
from hub.web.common import json_response, require_staff, services
from sync.messages import STORE_RECOVER

#: Free space below this share of the disk (or below LOW_DISK_BYTES) is reported as low.
LOW_DISK_SHARE = 0.05
LOW_DISK_BYTES = 512 * 1024 * 1024


def _disk(svc: Services) -> dict[str, Any]:
    database = svc.config.store.database
    usage = shutil.disk_usage(database.parent)
    files = [database, database.with_name(database.name + "-wal")]
    db_bytes = sum(f.stat().st_size for f in files if f.exists())
    return {"total_bytes": usage.total, "free_bytes": usage.free, "database_bytes": db_bytes,
            "low": usage.free < max(LOW_DISK_BYTES, usage.total * LOW_DISK_SHARE),
            "read_only": read_only(database), "problem": svc.storage_problem()}


def _outbox(svc: Services) -> dict[str, Any]:
    conn = svc.db.conn().conn
    depth, oldest = backlog(conn)
    last_seq = conn.execute(
        "SELECT CAST(value AS INTEGER) FROM store_meta WHERE key = 'last_seq'").fetchone()[0]
    try:
        row = conn.execute("SELECT value FROM sync_state WHERE key = 'acked_seq'").fetchone()
    except sqlite3.OperationalError:  # no sync tables in this database
        row = None
    return {"outbox_depth": depth, "oldest_pending_ts": oldest, "last_seq": last_seq,
            "last_acked_seq": row[0] if row else None,
            "recovered": _recovered(conn, svc.clock.now())}


#: Recoveries after a restore shown to staff: those of the last days, newest first.
RECOVERED_DAYS, RECOVERED_SHOWN = 14, 20


def _recovered(conn: sqlite3.Connection, now: float) -> list[dict[str, Any]]:
    """What the shop handed back after a restore (store.recover) and what became of it: the
    skipped events are for staff to put right by hand, so they are shown where staff look,
    not only in the hub's log. A batch the hub refused whole says so, with why."""
    try:
        rows = conn.execute(
            "SELECT received_at, status, ref, reason FROM sync_inbox WHERE type = ? AND "
            "received_at >= ? ORDER BY received_at DESC LIMIT ?",
            (STORE_RECOVER, now - RECOVERED_DAYS * DAY_S, RECOVERED_SHOWN)).fetchall()
    except sqlite3.OperationalError:  # no sync tables in this database
        return []
    return [{"at": at, "summary": summary if status == "applied" else "not applied: refused",
             "skipped": why} for at, status, summary, why in rows]


def _link_state(svc: Services) -> str:
    if not svc.config.mqtt.enabled or svc.sync is None:
        return "disabled"
    return "online" if svc.sync.agent.client.connected else "offline"


def _off(enabled: bool) -> dict[str, Any]:
    """The state of a feature whose service is missing: turned off, or not part of this hub."""
    return {"state": "absent" if enabled else "disabled", "detail": None}


def _vision(svc: Services) -> dict[str, Any]:
    if svc.photo_search is None:
        return _off(svc.config.vision.enabled)
    if svc.photo_search.failed is not None:  # staff see why; kiosk clients are told less
        return {"state": "unavailable",
                "detail": f"the model could not be loaded: {svc.photo_search.failed}"}
    try:
        engine = svc.photo_search.engine
    except Unavailable as exc:
        return {"state": "unavailable", "detail": exc.message}
    gallery = engine.gallery
    if gallery is None:
        return {"state": "unavailable", "detail": "no reference photos are enrolled"}
    return {"state": "ready", "detail": f"{engine.embedder.name}: {gallery.photos} photos of "
                                        f"{len(gallery.keys)} products"}


def _voice(svc: Services) -> dict[str, Any]:
    if svc.voice_search is None:
        return _off(svc.config.voice.enabled)
    status = svc.voice_search.status()
    if not status["ready"]:
        return {"state": "unavailable", "detail": status["problem"]}
    return {"state": "ready", "detail": f"{status['engine']}, language {status['language']}"}


def _beacons(svc: Services) -> dict[str, Any]:
    """The declared beacons' status from fleet health (a database read: run it on a reader)."""
    if svc.presence is None:
        return {**_off(svc.config.beacons.enabled), "beacons": [], "missing": 0}
    if svc.presence.health is None:
        problem = svc.presence.source_problem
        return {"state": "unavailable", "beacons": [], "missing": 0,
                "detail": f"not scanning: {problem}" if problem
                else "no beacon fleet is declared (beacons.fleet_file)"}
    beacons: list[dict[str, Any]] = svc.presence.health.snapshot()["beacons"]
    missing = sum(1 for beacon in beacons if beacon["missing"])
    problem = svc.presence.source_problem
    if problem is not None:
        return {"state": "unavailable", "detail": f"not scanning: {problem}", "beacons": beacons,
                "missing": missing}
    return {"state": "ok", "detail": None, "beacons": beacons, "missing": missing}


async def health(request: web.Request) -> web.Response:
    require_staff(request)
    svc = services(request)
    outbox = await svc.db.read(_outbox, svc)
    beacons = await svc.db.read(_beacons, svc)
    return json_response({
        "store": svc.config.store.id,
        "checked_at": svc.clock.now(),
        "disk": _disk(svc),
        "sync": {"state": _link_state(svc), **outbox},
        "models": {"vision": _vision(svc), "voice": _voice(svc)},
        "beacons": beacons,
    })


def setup(app: web.Application) -> None:
    app.router.add_get("/api/staff/health", health)
