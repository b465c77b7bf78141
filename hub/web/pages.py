"""The kiosk and staff pages: their HTML, the static files they load (all local, no CDN), and the
kiosk's start-up facts (store name, catalogue languages, which search modes this hub offers,
whether it reads answers aloud and how long a spoken question may be)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from hub.catalog import LANGUAGES_SQL
from hub.errors import NotFound
from hub.web import speech
from hub.web.common import inside, json_response, services

if TYPE_CHECKING:
    from hub.photo_search import PhotoService
    from hub.voice_search import VoiceService

STATIC = Path(__file__).parent / "static"

#: Search modes the kiosk offers when the hub serves the route and its service has not failed
#: to load: mode -> (route, service attribute of Services).
SEARCH_ROUTES = {
    "photo": ("/api/search/photo", "photo_search"),
    "voice": ("/api/search/voice", "voice_search"),
    "voice_stream": ("/api/search/voice/stream", "voice_search"),
}

#: Same-origin only: no script, style, font or image from anywhere else, no framing.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Permissions-Policy": "camera=(self), microphone=(self)",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def _page(name: str) -> web.FileResponse:
    return web.FileResponse(STATIC / name, headers=PAGE_HEADERS)


async def kiosk(request: web.Request) -> web.FileResponse:
    return _page("kiosk.html")


async def staff(request: web.Request) -> web.FileResponse:
    return _page("staff.html")


async def static_file(request: web.Request) -> web.FileResponse:
    target = inside(STATIC, request.match_info["path"])
    if target is None:
        raise NotFound("no such file")
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if target.suffix == ".js":  # the standard type, whatever the system's MIME table says
        headers["Content-Type"] = "text/javascript; charset=utf-8"
    return web.FileResponse(target, headers=headers)


def kiosk_language(configured: str | None, voice: str | None, languages: list[str]) -> str:
    """The language the kiosk starts in: the store's choice, else the one its voice engine hears
    (a Korean store whose catalogue also has English names had started in English, and a
    customer who read the English prompt and asked in English was not understood), else English,
    else the catalogue's first; each only when the catalogue has names in it."""
    for lang in (configured, voice, "en"):
        if lang in languages:
            return lang
    return languages[0] if languages else "en"


def _working(service: PhotoService | VoiceService | None) -> bool:
    """Whether a search service is on and has not failed to load: a kiosk customer shown a
    microphone whose engine is broken taps it only to be told it does not work. One that is
    still starting counts as working: it answers in seconds."""
    return service is not None and service.failed is None


async def kiosk_config(request: web.Request) -> web.Response:
    svc = services(request)
    rows = await svc.db.read(svc.db.query, LANGUAGES_SQL)
    languages = [row["lang"] for row in rows]
    voice = svc.voice_search.language() if svc.voice_search is not None else None
    paths = {resource.canonical for resource in request.app.router.resources()}
    return json_response({
        "store": {"id": svc.config.store.id, "name": svc.config.store.name,
                  "currency": svc.config.store.currency},
        "languages": languages,
        "default_language": kiosk_language(svc.config.store.language, voice, languages),
        "search": {mode: path in paths and _working(getattr(svc, service))
                   for mode, (path, service) in SEARCH_ROUTES.items()},
        "speech": "/api/speech" in paths and speech.available(request),
        # the kiosk stops listening a little before this, and searches what it heard
        "voice_max_seconds": (svc.voice_search.config.max_seconds
                              if svc.voice_search is not None else None),
    })


def setup(app: web.Application) -> None:
    app.router.add_get("/", kiosk)
    app.router.add_get("/kiosk", kiosk)
    app.router.add_get("/staff", staff)
    app.router.add_get("/static/{path:.+}", static_file)
    app.router.add_get("/api/kiosk", kiosk_config)
