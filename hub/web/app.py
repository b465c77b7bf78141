"""Builds the aiohttp application from the hub's services and the route modules."""

from __future__ import annotations

from aiohttp import web

from hub.services import Services
from hub.web import (
    beacons,
    health,
    live,
    members,
    middleware,
    ops,
    orders,
    pages,
    photo,
    products,
    speech,
    stock,
    voice,
)
from hub.web.common import SERVICES, TOKEN_GUESSES, UPLOADS, UploadPlaces
from hub.web.server import name_the_server
from hub.web.token_guesses import TokenGuesses

#: Route modules, each with ``setup(app)``; features add theirs here.
ROUTE_MODULES = [ops, products, stock, orders, members, pages, live, health, photo, voice,
                 speech, beacons]


def create_app(services: Services) -> web.Application:
    """The web app for ``services``; body size is capped at the largest upload allowed."""
    app = web.Application(
        middlewares=[middleware.metrics, middleware.errors],
        client_max_size=services.config.web.max_upload_bytes,
    )
    name_the_server()
    app[SERVICES] = services
    app[UPLOADS] = UploadPlaces()
    app[TOKEN_GUESSES] = TokenGuesses(services.clock)
    for module in ROUTE_MODULES:
        module.setup(app)
    return app
