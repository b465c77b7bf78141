"""pocketsphinx decodes in a child process: the hub's other threads run meanwhile, and a child
that dies is started again with the catalogue's grammar."""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
import pytest

from bench.voice_stall import pause_during
from tests.voice.conftest import ENGLISH_CATALOG
from voice.audio import Audio, to_pcm16
from voice.engine import EngineError
from voice.languages import ENGLISH
from voice.search import VoiceSearch
from voice.sphinx import PocketsphinxEngine

QUESTION = "where can I find the oat milk"


def long_question(say: Callable[..., Audio]) -> bytes:
    """Six questions one after another (about 12 s of speech at 16 kHz, 16-bit PCM)."""
    one = say(QUESTION)
    return to_pcm16(np.tile(one.samples, 6))


def test_a_decode_leaves_the_other_threads_running(sphinx: PocketsphinxEngine,
                                                   say: Callable[..., Audio]) -> None:
    """Why: pocketsphinx's binding holds the interpreter lock for a whole decode, so every
    thread of the hub stopped meanwhile: the event loop with the kiosk's searches, the till's
    sales, sync and presence (130 ms a question on a fast core, 1.6 s on a fifth of one). The
    longest pause of a thread counting beside a decode (measured as bench/voice_stall.py does)
    is held against the decode's time."""
    search = VoiceSearch(sphinx, ENGLISH_CATALOG, ENGLISH)
    pcm = long_question(say)
    search.engine.decode(search._compiled, pcm)  # warm: the child has the grammar loaded
    took, longest = pause_during(lambda: search.engine.decode(search._compiled, pcm))
    assert took > 0.05, f"the decode took {took:.3f} s: too short to tell anything"
    assert longest < took / 3, (longest, took)


def test_a_decoder_process_that_died_is_started_again_with_its_grammar(
        say: Callable[..., Audio]) -> None:
    engine = PocketsphinxEngine()
    try:
        search = VoiceSearch(engine, ENGLISH_CATALOG, ENGLISH)
        pcm = to_pcm16(say(QUESTION).samples)
        heard = engine.decode(search._compiled, pcm)
        assert "oat milk" in heard
        process = engine._worker._process
        assert process is not None
        process.kill()
        process.wait()
        assert engine.decode(search._compiled, pcm) == heard
        assert engine._worker._process is not process
    finally:
        engine.close()
    assert process.poll() is not None and engine._worker._process.poll() is not None


def test_a_decoder_process_that_cannot_start_is_an_engine_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Why: a child that ended before it answered (a broken install, a crash while loading)
    surfaced as the worker's private exception, not the EngineError that voice search turns
    into "voice search is off" with the reason."""
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with pytest.raises(EngineError, match="stopped while loading the model"):
        PocketsphinxEngine()
