"""Memory of the English voice engine over catalogue rebuilds: what a store pays each time its
catalogue changes (an import, a chain's ``catalog.update``, the check for imports by other
processes), against the same engine answering questions with no rebuild in the same run.

    .venv/bin/python bench/grammar_rebuilds.py [--rebuilds 30]

Each rebuild makes a new ``VoiceSearch`` for the demo catalogue (one product fewer every other
time, so the grammar really changes) and drops the one before, as the hub does; each baseline
step answers one question with the first grammar. Growth is the process's resident memory after
the steps less before them, in MB. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from voice.engines import open_engine  # noqa: E402
from voice.evaluation import children_kib  # noqa: E402
from voice.languages import ENGLISH  # noqa: E402
from voice.matcher import CatalogEntry  # noqa: E402
from voice.search import VoiceSearch  # noqa: E402
from voice.synthesis import Voice, speak, to_wav  # noqa: E402

CATALOG = ROOT / "hub" / "demo" / "catalog.json"


def rss_mb() -> float:
    """Resident memory of this process and its children (the pocketsphinx decoder process
    holds the grammars), from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return (int(line.split()[1]) + sum(children_kib("VmRSS"))) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rebuilds", type=int, default=30, help="Rebuilds (and baseline steps).")
    args = parser.parse_args()
    products = json.loads(CATALOG.read_text(encoding="utf-8"))["products"]
    entries = [CatalogEntry(p["sku"], p["names"], p.get("aliases", {})) for p in products]
    engine = open_engine("pocketsphinx")
    search = VoiceSearch(engine, entries, ENGLISH)
    question = to_wav(speak(Voice("espeak-ng", "en-us"), "where is the oat milk", 16_000))
    search.answer_wav(question)  # first-use allocations out of both figures

    before = rss_mb()
    for _ in range(args.rebuilds):
        search.answer_wav(question)
    baseline = rss_mb() - before

    before = rss_mb()
    for n in range(args.rebuilds):
        search = VoiceSearch(engine, entries[: len(entries) - n % 2], ENGLISH)
        search.answer_wav(question)
    growth = rss_mb() - before
    print(json.dumps({
        "bench": "grammar_rebuilds",
        "engine": "pocketsphinx",
        "products": len(entries),
        "steps": args.rebuilds,
        "rebuilds": {"rss_growth_mb": round(growth, 1),
                     "per_rebuild_mb": round(growth / max(1, args.rebuilds), 2)},
        "baseline_no_rebuild": {"rss_growth_mb": round(baseline, 1)},
    }))


if __name__ == "__main__":
    main()
