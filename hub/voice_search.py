"""Voice product search wired to the store: the speech engine loads once when the hub starts, the
catalogue grammar is built from the store's products and rebuilt whenever an import changes them,
and answers carry shelf and live stock like typed search.

Model loading, grammar building and decoding are CPU work; they run on the service's own worker
threads, never on the event loop. A rebuild swaps in a complete new :class:`VoiceSearch`, so a
question being decoded keeps the grammar it started with.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from hub.catalog import Catalog, ImportReport
from hub.config.voice import VoiceConfig
from hub.errors import InvalidInput, TooLarge, Unavailable
from voice import rnnoise
from voice.audio import AudioError, AudioLimits
from voice.denoise import in_use
from voice.engine import EngineError, SpeechEngine
from voice.engines import expected_language, open_engine
from voice.grammar import VocabularyReport
from voice.languages import language
from voice.matcher import CatalogEntry
from voice.search import SearchSettings, VoiceAnswer, VoiceSearch, VoiceStream

if TYPE_CHECKING:
    from hub.services import Services

log = logging.getLogger(__name__)
T = TypeVar("T")


def audio_error(exc: AudioError) -> InvalidInput | TooLarge:
    """An audio problem as the 4xx a client gets (413 for too long, else 400)."""
    if exc.code == "audio_too_long":
        return TooLarge(exc.message, code=exc.code)
    return InvalidInput(exc.message, code=exc.code)


def open_configured_engine(config: VoiceConfig) -> SpeechEngine:
    """The engine ``config`` names, loaded (seconds: call it off the event loop)."""
    engine = config.engine
    if engine.type == "pocketsphinx":
        return open_engine(
            "pocketsphinx", engine.model_dir, "en", engine.dictionary, engine.accents
        )
    return open_engine("vosk", engine.model_dir, engine.language)


def catalog_entries(catalog: Catalog) -> list[CatalogEntry]:
    """The store's products as the matcher and grammar see them (names under language tags
    such as "en-GB", which the catalogue accepts, are listened for as their language)."""
    return [CatalogEntry.tagged(p.sku, p.names, p.aliases) for p in catalog.all()]


#: What a kiosk client is told when the engine failed to load; staff read the reason in store
#: health, the voice status with the staff token, the log and doctor.
UNAVAILABLE = (
    "voice search is unavailable: its speech engine could not be loaded (staff: store health "
    "and 'retail-hub doctor' say why)"
)


class VoiceService:
    """The hub's voice search: one engine, the current catalogue grammar, and limits."""

    def __init__(self, catalog: Catalog, config: VoiceConfig, max_upload_bytes: int) -> None:
        self.catalog = catalog
        self.config = config
        self.max_upload_bytes = max_upload_bytes
        self.limits = AudioLimits(max_seconds=config.max_seconds)
        self.settings = SearchSettings(
            accept_score=config.accept_score,
            suggest_score=config.suggest_score,
            results=config.results,
            noise_suppression=config.noise_suppression,
        )
        self.streams = asyncio.Semaphore(config.max_stream_sessions)
        self._engine: SpeechEngine | None = None
        self._search: VoiceSearch | None = None
        self._problem: str | None = "voice search is starting"
        self.failed: str | None = None  # why the engine could not be loaded, until a restart
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="voice")
        catalog.add_listener(self._catalog_changed)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the engine and build the grammar in the background; the hub does not wait."""
        self._executor.submit(self._load)

    async def stop(self) -> None:
        """Wait for a decode under way on a thread of its own: waiting on the event loop froze
        every other request, and the web side's goodbyes, for as long as the decode took."""
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)

    def _load(self) -> None:
        try:
            self._engine = open_configured_engine(self.config)
        except (EngineError, ValueError) as exc:
            self._problem = self.failed = f"the speech engine could not be loaded: {exc}"
            log.error("voice search disabled: %s", exc)
            return
        why = rnnoise.problem()
        if self.config.noise_suppression == "rnnoise" and why is not None:
            log.warning("%s: noisy questions get the spectral noise suppression ('retail-hub "
                        "doctor' says how to mend it)", why)
        self.rebuild()

    def _catalog_changed(self, _report: ImportReport) -> None:
        if self._engine is not None:
            self._executor.submit(self.rebuild)

    def rebuild(self) -> VocabularyReport | None:
        """Build the grammar for the current catalogue and swap it in; returns its report."""
        engine = self._engine
        if engine is None:
            return None
        try:
            search = VoiceSearch(
                engine,
                catalog_entries(self.catalog),
                language(engine.language),
                self.settings,
                self.config.pronunciations,
            )
        except (ValueError, EngineError) as exc:  # the engine refusing the grammar, too:
            with self._lock:  # raised on the worker thread, it had vanished unlogged
                self._search = None
                self._problem = str(exc)
            log.warning("voice search has no grammar: %s", exc)
            return None
        with self._lock:
            self._search = search
            self._problem = None
        report = search.grammar.report
        repaired = [missing.word for missing in report.missing if missing.repair is not None]
        if repaired:  # one line, not one per word: 'voice check' details each
            log.warning("voice vocabulary: %d catalogue words are not in the model and are heard "
                        "through a guessed pronunciation or respelling (%s); run 'retail-hub "
                        "voice check' to see and correct each", len(repaired), ", ".join(repaired))
        for missing in report.missing:
            if missing.repair is None:
                log.warning("voice vocabulary: %s", missing.suggestion)
        return report

    # --- answering ------------------------------------------------------------------------

    def current(self) -> VoiceSearch:
        """The grammar in use, or 503 with the reason when there is none yet (a failed engine's
        reason names server paths: kiosk clients are told only that it failed)."""
        with self._lock:
            if self._search is None:
                raise Unavailable(UNAVAILABLE if self.failed else self._problem or "not ready")
            return self._search

    def language(self) -> str | None:
        """The language the engine hears: once loaded its own, before that what its
        configuration tells (the kiosk of a Korean store asks while the model loads)."""
        if self._engine is not None:
            return self._engine.language
        engine = self.config.engine
        return expected_language(engine.type, engine.model_dir, engine.language)

    def status(self, staff: bool = True) -> dict[str, Any]:
        """Engine, language, noise suppression in use and vocabulary report; why it failed
        only for ``staff``."""
        with self._lock:
            search, problem = self._search, self._problem
        return {
            "ready": search is not None,
            "problem": UNAVAILABLE if self.failed and not staff else problem,
            "engine": self.config.engine.type,
            "noise_suppression": in_use(self.config.noise_suppression),
            "language": None if search is None else search.language.code,
            "sample_rate": None if search is None else search.engine.sample_rate,
            "vocabulary": None if search is None else search.grammar.report.to_json(),
        }

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking voice work on the service's threads."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(fn, *args))

    async def answer_wav(self, data: bytes) -> VoiceAnswer:
        """Answer a WAV upload; bad audio becomes a 4xx with a message a person can act on."""
        if len(data) > self.max_upload_bytes:
            raise TooLarge(f"the audio is larger than {self.max_upload_bytes} bytes")
        search = self.current()
        try:
            return await self.run(search.answer_wav, data, self.limits)
        except AudioError as exc:
            raise audio_error(exc) from None

    def open_stream(self) -> tuple[VoiceSearch, VoiceStream]:
        """A streaming session on the current grammar."""
        search = self.current()
        return search, search.stream()


def setup(services: Services) -> None:
    """Attach voice search to the hub when enabled; the engine loads when the hub starts."""
    config = services.config.voice
    if not config.enabled:
        return
    service = VoiceService(services.catalog, config, services.config.web.max_upload_bytes)
    services.voice_search = service
    services.lifecycle.append(service)
