"""Voice search API for the kiosk: a WAV upload answered in one request, and a WebSocket that takes
microphone PCM as it is recorded and sends partial transcripts back while the customer speaks.

WebSocket protocol (``GET /api/search/voice/stream``):

1. optional text message ``{"rate": 48000}``: the sample rate of the PCM that follows (default:
   the model's rate);
2. binary messages: 16-bit little-endian mono PCM; each is answered with
   ``{"type": "partial", "text": ...}``;
3. text message ``{"type": "end"}``: answered with ``{"type": "final", ...}`` (the same body as
   the POST endpoint), after which the socket may start the next question with step 1 or 2.

Errors are sent as ``{"type": "error", "code", "message"}`` and close the socket; so is silence
of ``IDLE_S`` (code ``idle``), a question whose audio takes longer than its limit plus
``STREAM_SLACK_S`` to arrive (``too_slow``), a connection open over ``SESSION_MAX_S``
(``session_too_long``) and a message over ``MAX_FRAME_BYTES`` (``too_big``, close code 1009).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import numpy as np
from aiohttp import WSMessage, WSMsgType, web

from hub.errors import HubError, InvalidInput, Unavailable, UnsupportedMedia
from hub.voice_search import VoiceService
from hub.web.common import (
    LOOPBACK,
    SizedWebSocket,
    client_address,
    close_on_shutdown,
    is_staff,
    json_response,
    own_screen,
    prepare_websocket,
    read_body,
    services,
    upload_place,
)
from hub.web.products import product_view
from untrusted.json_keys import DuplicateKeyError, loads_unique
from voice.audio import MAX_RATE, MIN_RATE, StreamResampler, to_pcm16
from voice.search import VoiceAnswer

WAV_TYPES = ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave")
#: A kiosk connection that sends nothing for this long is closed: only a few may stream at once,
#: and a kiosk that dropped off the network would otherwise hold its place for good.
IDLE_S = 30.0
#: Pings find a connection whose other end is gone even while a question is under way.
HEARTBEAT_S = 10.0
#: A question's audio may arrive over its length (voice.max_seconds) plus this, in seconds.
STREAM_SLACK_S = 5.0
#: Open streaming sockets, closed when the hub stops.
STREAMS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("voice_streams", set)
#: Streams one device may hold at once: a kiosk streams one question at a time (two leaves room
#: for the socket of a question that is closing), so one device cannot take every place.
MAX_STREAMS_PER_CLIENT = 2
#: Open streams per device (``client_address``).
STREAM_CLIENTS: web.AppKey[Counter[str]] = web.AppKey("voice_stream_clients", Counter)
#: Largest message: a kiosk sends about a tenth of a second of PCM at a time (under 10 kB).
MAX_FRAME_BYTES = 1024 * 1024
#: Longest a streaming connection stays open, in seconds: the kiosk opens one per question.
SESSION_MAX_S = 120.0


def _service(request: web.Request) -> VoiceService:
    service = services(request).voice_search
    if service is None:
        raise Unavailable("voice search is turned off on this hub ([voice] enabled = false)")
    return service


async def answer_json(request: web.Request, answer: VoiceAnswer) -> dict[str, Any]:
    """The answer with each product's shelf, price and live stock, as typed search gives them."""
    svc = services(request)

    async def products(matches: tuple[Any, ...]) -> list[dict[str, Any]]:
        out = []
        for match in matches:
            item = await svc.db.read(product_view, svc, match.sku)
            item["score"] = match.score
            item["matched"] = match.matched
            out.append(item)
        return out

    body = answer.to_json()
    body["results"] = await products(answer.results)
    body["did_you_mean"] = await products(answer.did_you_mean)
    return body


async def search_voice(request: web.Request) -> web.Response:
    service = _service(request)
    if request.content_type not in WAV_TYPES:
        raise UnsupportedMedia("send the recording as a WAV file with 'Content-Type: audio/wav'")
    async with upload_place(request):
        audio = await read_body(request, service.max_upload_bytes, "the audio")
        answer = await service.answer_wav(audio)
    return json_response(await answer_json(request, answer))


async def stream_voice(request: web.Request) -> web.WebSocketResponse:
    service = _service(request)
    ws = SizedWebSocket(max_msg_size=MAX_FRAME_BYTES, error=_error, heartbeat=HEARTBEAT_S)
    await prepare_websocket(request, ws)
    client, clients = client_address(request), request.app[STREAM_CLIENTS]
    if clients[client] >= MAX_STREAMS_PER_CLIENT:
        await _fail(ws, Unavailable(
            f"this device already has {MAX_STREAMS_PER_CLIENT} questions streaming; finish or "
            "close one first"))
        return ws
    others = sum(n for address, n in clients.items() if address not in LOOPBACK)
    if service.streams.locked() or (not own_screen(request) and others >= max(
            1, services(request).config.voice.max_stream_sessions - 1)):
        # one place is kept for the hub's own screen: two devices on the network had held
        # every place and the kiosk's spoken search was unavailable for as long as they liked
        await _fail(ws, Unavailable("too many kiosks are streaming at once; try again shortly"))
        return ws
    open_streams = request.app[STREAMS]
    async with service.streams:
        open_streams.add(ws)
        clients[client] += 1
        try:
            await _converse(request, ws, service)
        except HubError as exc:
            await _fail(ws, exc)
        except ConnectionResetError:  # the kiosk went away before its answer: nobody to tell
            pass
        finally:
            open_streams.discard(ws)
            clients[client] -= 1
            if not clients[client]:
                del clients[client]
    return ws


async def _converse(request: web.Request, ws: web.WebSocketResponse, service: VoiceService) -> None:
    search, stream = service.open_stream()
    rate = search.engine.sample_rate
    resampler = StreamResampler(rate, rate)
    received = 0  # samples at the sender's rate
    clock = asyncio.get_running_loop().time
    opened, question_began = clock(), None
    active = opened  # the last audio or answer: 'rate' messages do not keep a socket alive
    while True:
        msg = await _receive(ws, opened, active, question_began, service.config.max_seconds)
        if msg.type == WSMsgType.BINARY:
            active = clock()
            question_began = question_began or active
            if len(msg.data) % 2:
                raise InvalidInput("PCM frames must hold whole 16-bit samples", code="bad_frame")
            samples = np.frombuffer(msg.data, dtype="<i2").astype(np.float32) / 32768.0
            received += len(samples)
            if received > service.config.max_seconds * resampler.src_rate:
                raise InvalidInput(
                    f"the question is longer than {service.config.max_seconds:g} "
                    "seconds; send 'end' sooner",
                    code="audio_too_long",
                )
            pcm = to_pcm16(resampler.accept(samples))
            partial = await service.run(stream.accept, pcm)
            await ws.send_json({"type": "partial", "text": partial})
        elif msg.type == WSMsgType.TEXT:
            command = _command(msg.data)
            if "rate" in command:
                if received:
                    raise InvalidInput(
                        "send 'rate' before the question's audio, not in the middle of it",
                        code="bad_rate",
                    )
                resampler = StreamResampler(_rate(command["rate"]), rate)
            if command.get("type") == "end":
                await service.run(stream.accept, to_pcm16(resampler.flush()))
                answer = await service.run(stream.finish)
                await ws.send_json({"type": "final", **await answer_json(request, answer)})
                search, stream = service.open_stream()
                resampler = StreamResampler(resampler.src_rate, rate)
                received, question_began, active = 0, None, clock()
        elif msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):  # closed, closing or broken
            return


async def _receive(
    ws: web.WebSocketResponse,
    opened: float,
    active: float,
    question_began: float | None,
    max_seconds: float,
) -> WSMessage:
    """The next message, or the error of the first of the stream's deadlines to pass.

    Why deadlines and not aiohttp's ``receive_timeout``: that timeout starts again with every
    ping and pong, so a kiosk page that froze mid-question (answering the heartbeat, sending
    nothing) was never told ``idle`` and held one of the few streaming places until the hub
    restarted. The idle deadline runs from the last audio or answer (``active``): a client that
    sent only ``rate`` messages every few seconds had held its place until the session's limit.
    A kiosk opens a socket per question and streams it as it is spoken, so a client trickling a
    few samples now and then is stopped by the other two deadlines."""
    deadlines = [
        (active + IDLE_S, "idle", f"no audio arrived for {IDLE_S:g} s"),
        (
            opened + SESSION_MAX_S,
            "session_too_long",
            f"this connection has been open {SESSION_MAX_S:g} s; open a new one per question",
        ),
    ]
    if question_began is not None:
        deadlines.append((
            question_began + max_seconds + STREAM_SLACK_S,
            "too_slow",
            f"the question's audio took longer than {max_seconds + STREAM_SLACK_S:g} s to "
            "arrive; stream it as it is spoken, then send 'end'",
        ))
    when, code, message = min(deadlines)
    try:
        async with asyncio.timeout_at(when):
            return await ws.receive()
    except TimeoutError:
        raise InvalidInput(message, code=code) from None


def _command(text: str) -> dict[str, Any]:
    command: Any
    try:
        command = loads_unique(text)
    except DuplicateKeyError as exc:  # {"rate": 8000, "rate": 48000}: which rate is meant?
        raise InvalidInput(f"{exc}; send each key once", code="bad_message") from None
    except (ValueError, RecursionError):  # not JSON, or nested beyond any command's depth
        command = None
    known = isinstance(command, dict) and (command == {"type": "end"} or set(command) == {"rate"})
    if not known:
        # an unknown command ignored would leave the kiosk waiting for an answer that never comes
        raise InvalidInput(
            'text messages are {"rate": 48000} before the audio or {"type": "end"} after it; '
            f"got {text[:80]!r}",
            code="bad_message",
        )
    return command


def _rate(value: Any) -> int:
    if not isinstance(value, int) or not MIN_RATE <= value <= MAX_RATE:
        raise InvalidInput(
            f"'rate' must be an integer from {MIN_RATE} to {MAX_RATE} Hz", code="bad_rate"
        )
    return value


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


async def _fail(ws: web.WebSocketResponse, exc: HubError) -> None:
    try:
        await ws.send_json(_error(exc.code, exc.message))
        await ws.close()
    except ConnectionResetError:  # already gone
        pass


async def voice_status(request: web.Request) -> web.Response:
    return json_response(_service(request).status(staff=is_staff(request)))


def setup(app: web.Application) -> None:
    close_on_shutdown(app, STREAMS)
    app[STREAM_CLIENTS] = Counter()
    app.router.add_post("/api/search/voice", search_voice)
    app.router.add_get("/api/search/voice/stream", stream_voice)
    app.router.add_get("/api/search/voice/status", voice_status)
