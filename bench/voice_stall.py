"""How long a spoken question stops the hub's other threads: the longest pause of a thread that
counts while another decodes, for the engine (pocketsphinx in its child process) against a
pocketsphinx decoder in this process (the baseline: what the hub did before, its binding holding
the interpreter lock for the whole decode). Same grammar, same audio, same settings.

    .venv/bin/python bench/voice_stall.py [--repeats 5] [--questions 6]

Prints one JSON object: per way, the decode's time and the longest pause, in ms (medians).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pocketsphinx import Decoder

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from voice.audio import to_pcm16  # noqa: E402
from voice.languages import ENGLISH  # noqa: E402
from voice.matcher import CatalogEntry  # noqa: E402
from voice.search import VoiceSearch  # noqa: E402
from voice.sphinx import DECODER_SETTINGS, PocketsphinxEngine  # noqa: E402
from voice.synthesis import Voice, speak  # noqa: E402

CATALOG = [CatalogEntry("GS-045", {"en": "Oatly Oat Milk"}, {"en": ["oat milk"]}),
           CatalogEntry("GS-006", {"en": "Banana"}), CatalogEntry("GS-062", {"en": "Carrots"})]


def pause_during(decode: Callable[[], object]) -> tuple[float, float]:
    """(seconds the decode took, longest pause of this thread meanwhile)."""
    done = threading.Event()
    took: list[float] = []

    def run() -> None:
        started = time.perf_counter()
        decode()
        took.append(time.perf_counter() - started)
        done.set()

    worker = threading.Thread(target=run)
    last = time.perf_counter()
    longest = 0.0
    worker.start()
    while not done.is_set():
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now
    worker.join()
    return took[0], longest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--questions", type=int, default=6,
                        help="questions spoken one after another in each decode")
    args = parser.parse_args()
    engine = PocketsphinxEngine()
    search = VoiceSearch(engine, CATALOG, ENGLISH)
    one = speak(Voice("espeak-ng", "en-us"), "where can I find the oat milk", 16_000)
    pcm = to_pcm16(np.tile(one.samples, args.questions))
    name = str(search._compiled)
    baseline = Decoder(hmm=str(engine._hmm), dict=engine._worker.dictionary, lm=None,
                       loglevel="FATAL", **DECODER_SETTINGS)
    baseline.add_jsgf_string(name, engine._worker.searches[name])
    baseline.activate_search(name)

    def in_process() -> None:
        baseline.start_utt()
        baseline.process_raw(pcm, full_utt=True)
        baseline.end_utt()

    ways = {"engine_child_process": lambda: engine.decode(search._compiled, pcm),
            "baseline_in_process": in_process}
    figures = {}
    for label, decode in ways.items():
        decode()  # warm
        runs = [pause_during(decode) for _ in range(args.repeats)]
        figures[label] = {"decode_ms": round(statistics.median(r[0] for r in runs) * 1000, 1),
                          "longest_pause_ms": round(statistics.median(r[1] for r in runs) * 1000,
                                                    1)}
    engine.close()
    print(json.dumps({"bench": "voice_stall", "audio_s": round(len(pcm) / 32_000, 1),
                      "repeats": args.repeats, **figures}))


if __name__ == "__main__":
    main()
