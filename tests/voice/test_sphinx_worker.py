"""pocketsphinx decodes in a child process: the hub's other threads run meanwhile, and a child
that dies is started again with the catalogue's grammar."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from tests.voice.conftest import ENGLISH_CATALOG
from voice.audio import Audio, to_pcm16
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
    longest pause of a thread counting beside a decode is measured against the decode's time."""
    search = VoiceSearch(sphinx, ENGLISH_CATALOG, ENGLISH)
    pcm = long_question(say)
    search.engine.decode(search._compiled, pcm)  # warm: the child has the grammar loaded
    done = threading.Event()
    took: list[float] = []

    def decode() -> None:
        started = time.perf_counter()
        search.engine.decode(search._compiled, pcm)
        took.append(time.perf_counter() - started)
        done.set()

    worker = threading.Thread(target=decode)
    last = time.perf_counter()
    longest = 0.0
    worker.start()
    while not done.is_set():
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now
    worker.join()
    assert took[0] > 0.05, f"the decode took {took[0]:.3f} s: too short to tell anything"
    assert longest < took[0] / 3, (longest, took[0])


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
