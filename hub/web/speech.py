"""Spoken answers for the kiosk: ``GET /api/speech?text=...&lang=en`` returns the text read by
espeak-ng as a WAV file, so a customer who cannot read the screen well hears the product, its
shelf and its stock. Offline like the rest of the hub; short texts only, and they take one of the
upload places, so a burst of requests cannot keep the hub's cores busy."""

from __future__ import annotations

import asyncio
import shutil
import unicodedata

from aiohttp import web

from hub.errors import InvalidInput, Unavailable
from hub.web.common import services, upload_place
from voice.synthesis import VoiceUnavailable, espeak_wav

#: Longest text read aloud: a product's answer is well under it.
MAX_CHARS = 300


def available(request: web.Request) -> bool:
    """Whether the kiosk can have its answers read aloud here."""
    return services(request).config.voice.speak_answers and shutil.which("espeak-ng") is not None


async def speech(request: web.Request) -> web.Response:
    config = services(request).config.voice
    if not config.speak_answers:
        raise Unavailable("spoken answers are turned off on this hub (voice.speak_answers)")
    # invisible format characters (a soft hyphen, a zero-width joiner in a catalogue name) are
    # not said; control characters are not text at all
    text = "".join(ch for ch in request.query.get("text", "") if unicodedata.category(ch) != "Cf")
    text = text.strip()
    if not text:
        raise InvalidInput("say what to read aloud: /api/speech?text=...&lang=en")
    if len(text) > MAX_CHARS:
        raise InvalidInput(f"the text is {len(text)} characters; at most {MAX_CHARS} are read")
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise InvalidInput("the text holds control characters; send plain words")
    lang = request.query.get("lang", "en")
    voice = config.answer_voices.get(lang)
    if voice is None:
        raise InvalidInput(
            f"no voice for language {lang!r}; voice.answer_voices has "
            f"{', '.join(sorted(config.answer_voices)) or 'none'}"
        )
    async with upload_place(request):
        try:
            wav = await asyncio.to_thread(espeak_wav, text, voice, config.answer_speed)
        except VoiceUnavailable as exc:
            raise Unavailable(
                f"answers cannot be read aloud: {exc} (sudo apt-get install espeak-ng)"
            ) from exc
    return web.Response(body=wav, content_type="audio/wav", headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/speech", speech)
