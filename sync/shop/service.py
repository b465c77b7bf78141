"""Starting and stopping the shop service: database, MQTT link and HTTP API."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry

from sync.metrics import SyncMetrics
from sync.shop.config import ShopConfig
from sync.shop.context import Shop
from sync.shop.feed import StockFeed
from sync.shop.link import LinkSettings, ShopLink
from sync.shop.retention import ShopRetention
from sync.shop.store import ShopStore
from sync.shop.web import create_app
from sync.waiting import Sleep

log = logging.getLogger(__name__)


class ShopService:
    """One running shop instance; ``url`` is where its API answers once started."""

    def __init__(self, config: ShopConfig, clock: Callable[[], float] = time.time,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.config = config
        registry = CollectorRegistry()
        s = config.sync
        store = ShopStore(config.database, s.max_payload_bytes)
        feed = StockFeed()
        link = ShopLink(
            store,
            config.mqtt.broker_settings(config.mqtt.client_id, s.max_payload_bytes),
            LinkSettings(prefix=s.topic_prefix, shared_group=config.mqtt.shared_group,
                         ack_interval_s=s.ack_interval_s, resend_after_s=s.resend_after_s,
                         max_payload_bytes=s.max_payload_bytes, batch=s.batch),
            clock=clock, sleep=sleep, metrics=SyncMetrics(registry, "shop"),
            on_stock=feed.publish,
        )
        self.shop = Shop(config, clock, store, link, feed, registry)
        self.retention = ShopRetention(store, config.retention, clock=clock, sleep=sleep)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        self.shop.store.create_schema()
        await self.shop.link.start()
        await self.retention.start()
        self._runner = web.AppRunner(create_app(self.shop), access_log=None,
                                     handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.http.host, self.config.http.port)
        await site.start()
        port = self._runner.addresses[0][1]
        host = self.config.http.host if self.config.http.host not in ("0.0.0.0", "::") \
            else "127.0.0.1"
        self.url = f"http://{host}:{port}"
        log.info("shop service serving at %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        await self.retention.stop()
        await self.shop.link.stop()
        self.shop.store.close()


async def serve_until_stopped(config: ShopConfig,
                              on_started: Callable[[ShopService], None] | None = None) -> None:
    """Run until SIGINT or SIGTERM."""
    service = ShopService(config)
    await service.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if on_started is not None:
        on_started(service)
    try:
        await stop.wait()
    finally:
        await service.stop()
