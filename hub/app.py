"""Running the hub: services, background work and the web server, stopped cleanly on a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial

from aiohttp import web

from hub.backup import exclusive_use, refuse_lost_database
from hub.clock import Clock
from hub.config import HubConfig
from hub.database_file import DatabaseFileWatch
from hub.disk_reserve import DiskReserve
from hub.expiry import OrderExpiry
from hub.loop_lag import LoopLagMonitor
from hub.periodic import PeriodicJob
from hub.retention import Retention
from hub.services import Services, build_services
from hub.web.app import create_app
from hub.web.server import ServerLog

#: How often the hub looks for a catalogue another process imported, in seconds.
CATALOG_WATCH_S = 30.0

log = logging.getLogger(__name__)


class RunningHub:
    """A started hub; ``url`` is where its web app answers."""

    def __init__(self, services: Services, runner: web.AppRunner, url: str,
                 lock: ExitStack) -> None:
        self.services = services
        self.runner = runner
        self.url = url
        self._lock = lock

    async def stop(self) -> None:
        # The web side first: its open streams are told the hub is stopping and the requests
        # under way finish while the services they use still run (stopped first, the voice
        # threads refused the questions being streamed: "cannot schedule new futures").
        await self.runner.cleanup()
        for part in reversed(self.services.lifecycle):
            try:
                await part.stop()
            except Exception:
                log.exception("error while stopping %s", type(part).__name__)
        self.services.close()
        self._lock.close()


async def start_hub(config: HubConfig, clock: Clock | None = None,
                    services: Services | None = None) -> RunningHub:
    """Build the services (unless given), start background work and serve the web app."""
    refuse_lost_database(config.store.database)  # before the lock file is there in any case
    lock = ExitStack()
    lock.enter_context(exclusive_use(config.store.database))
    try:
        services = services or build_services(config, clock)
    except BaseException:
        lock.close()
        raise
    services.bus.bind(asyncio.get_running_loop())
    services.database_file = DatabaseFileWatch(services.db, services.clock)
    services.lifecycle[:0] = [
        LoopLagMonitor(services.metrics.loop_lag),
        services.database_file,
        OrderExpiry(services.orders, services.db, services.clock),
        Retention(config.retention, services.db, services.clock),
        PeriodicJob("catalog-imports", CATALOG_WATCH_S, services.clock,
                    partial(services.db.read, services.catalog.notice_other_imports)),
    ]
    started = []
    try:
        for part in services.lifecycle:
            await part.start()
            started.append(part)
        # aiohttp's keep-alive timer also runs from the connection's start, so it is what closes
        # a connection whose request header never ends; ServerLog counts unparseable requests
        runner = web.AppRunner(create_app(services), access_log=None, handle_signals=False,
                               keepalive_timeout=config.web.idle_timeout_s,
                               logger=ServerLog(services.metrics.http_malformed))
        await runner.setup()
        site = web.TCPSite(runner, config.web.host, config.web.port)
        await site.start()
    except BaseException:
        for part in reversed(started):
            await part.stop()
        services.close()
        lock.close()
        raise
    port = runner.addresses[0][1]
    host = config.web.host if config.web.host not in ("0.0.0.0", "::") else "127.0.0.1"
    return RunningHub(services, runner, f"http://{host}:{port}", lock)


async def serve_until_stopped(config: HubConfig,
                              on_started: Callable[[RunningHub], None] | None = None) -> None:
    """Run the hub until SIGINT or SIGTERM, then stop everything in order. The disk reserve is
    the long-running hub's: given up first when the disk is full, made again once started."""
    reserve = DiskReserve(config.store.database, config.store.disk_reserve_mb)
    reserve.release_if_full()
    hub = await start_hub(config)
    await asyncio.to_thread(reserve.keep)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if on_started is not None:
        on_started(hub)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await hub.stop()
