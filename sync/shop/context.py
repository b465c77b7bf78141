"""The running shop service's parts, as request handlers reach them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry

from sync.shop.config import ShopConfig
from sync.shop.feed import StockFeed
from sync.shop.link import ShopLink
from sync.shop.store import ShopStore


@dataclass
class Shop:
    """Everything a handler may need."""

    config: ShopConfig
    clock: Callable[[], float]
    store: ShopStore
    link: ShopLink
    feed: StockFeed
    registry: CollectorRegistry


SHOP: web.AppKey[Shop] = web.AppKey("shop", Shop)
