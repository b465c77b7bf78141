"""Reads a product photo collection laid out like the Grocery Store dataset: ``classes.csv`` (one
product per row, with its catalogue image) and split files of ``path, fine_id, coarse_id`` lines.

Why here: the eval command, the bench and the offline training all enrol the same collection, and
a wrong column or path must fail with a message that names the file and line, not a KeyError.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from vision.errors import VisionError


class DatasetError(VisionError):
    """The dataset folder does not have the expected files or a line cannot be read."""

    code = "bad_dataset"


@dataclass(frozen=True)
class ProductClass:
    """One product of the collection: fine and coarse class, and its catalogue (iconic) image."""

    class_id: int
    name: str
    coarse_id: int
    coarse_name: str
    #: The catalogue image, or None when its classes.csv cell is empty.
    iconic: Path | None
    #: Line of classes.csv, for errors about this product.
    line: int = 0
    #: The iconic image path as classes.csv writes it, for errors a person can find it by.
    iconic_written: str = ""
    #: classes.csv and its line, for errors.
    where: str = ""


@dataclass(frozen=True)
class LabelledPhoto:
    """A photo and the fine class it shows; ``where`` is its split file and line, for errors."""

    path: Path
    class_id: int
    coarse_id: int
    where: str = ""


#: The classes.csv columns read, by their header names (case and a "(str)"/"(int)" type suffix
#: aside); others, such as Product Description Path, are ignored.
CLASS_NAME = "Class Name"
CLASS_ID = "Class ID"
COARSE_NAME = "Coarse Class Name"
COARSE_ID = "Coarse Class ID"
ICONIC = "Iconic Image Path"
CLASS_COLUMNS = (CLASS_NAME, CLASS_ID, COARSE_NAME, COARSE_ID, ICONIC)
#: The largest classes.csv or split file read: a split of 100 000 photos at about 80 bytes a
#: line is 8 MB; anything larger (a wrong file, a sparse one) is refused before it is read.
MAX_TEXT_BYTES = 16 * 1024 * 1024
_TYPE_SUFFIX = re.compile(r"\((?:str|int)\)$", re.IGNORECASE)


def read_classes(root: Path) -> list[ProductClass]:
    """Parse ``classes.csv``; products come back ordered by class id.

    Columns are found by their header names, not their position: a spreadsheet that reorders
    them had every id read from the wrong column, blamed later on a split line or an image."""
    path = root / "classes.csv"
    if not path.is_file():
        raise DatasetError(f"{path} is missing; a dataset folder needs classes.csv")
    classes: list[ProductClass] = []
    rows = csv.reader(_text(path).splitlines())
    column = _columns(path, next(rows, None) or [])
    for row in rows:
        if not any(cell.strip() for cell in row):
            continue  # a blank line, or a spreadsheet's empty ",,,,," row
        classes.append(_product(root, path, rows.line_num, row, column))
    if not classes:
        raise DatasetError(f"{path} lists no products")
    return sorted(classes, key=lambda c: c.class_id)


def _columns(path: Path, header: list[str]) -> dict[str, int]:
    """The position of each needed column in classes.csv's header line."""
    if not "".join(header).strip():
        raise DatasetError(
            f"{path}:1: the first line must name the columns ({', '.join(CLASS_COLUMNS)}); "
            "it is empty"
        )
    if len(header) > 1 and header[1].strip().lstrip("-").isdigit():
        raise DatasetError(
            f"{path}:1: the first line must name the columns ({', '.join(CLASS_COLUMNS)}); "
            f"it holds product {header[0]!r}"
        )
    needed = {_column_key(name) for name in CLASS_COLUMNS}
    found: dict[str, int] = {}
    for index, name in enumerate(header):
        key = _column_key(name)
        if key in needed and key in found:  # which one is meant? (other columns are not read)
            raise DatasetError(
                f"{path}:1: columns {found[key] + 1} and {index + 1} are both {name.strip()!r}"
            )
        found.setdefault(key, index)
    missing = [name for name in CLASS_COLUMNS if _column_key(name) not in found]
    if missing:
        raise DatasetError(
            f"{path}:1: the header has no {' or '.join(repr(m) for m in missing)} column; "
            f"classes.csv needs the columns {', '.join(CLASS_COLUMNS)} (in any order; case and "
            f"a (str)/(int) suffix do not matter), and its header is: {','.join(header)}"
        )
    return {name: found[_column_key(name)] for name in CLASS_COLUMNS}


def _column_key(name: str) -> str:
    """A header name as compared: "Class ID (int)" and "class id" are the same column."""
    return " ".join(_TYPE_SUFFIX.sub("", name.strip()).split()).casefold()


def _product(
    root: Path, path: Path, line: int, row: list[str], column: dict[str, int]
) -> ProductClass:
    """Line ``line`` of classes.csv (``path``) as a product, its cells found by ``column``."""
    where = f"{path}:{line}"
    for name, index in column.items():
        if index >= len(row):
            raise DatasetError(
                f"{where}: only {len(row)} columns, so no {name} (column {index + 1} of the header)"
            )
    cell = {name: row[index].strip() for name, index in column.items()}
    try:
        class_id, coarse_id = int(cell[CLASS_ID]), int(cell[COARSE_ID])
    except ValueError as exc:
        raise DatasetError(f"{where}: class ids must be integers ({exc})") from exc
    iconic = cell[ICONIC].lstrip("/")
    return ProductClass(
        class_id=class_id,
        name=cell[CLASS_NAME],
        coarse_id=coarse_id,
        coarse_name=cell[COARSE_NAME],
        iconic=root / iconic if iconic else None,
        line=line,
        iconic_written=cell[ICONIC],
        where=where,
    )


def read_split(
    root: Path, split: str, classes: list[ProductClass] | None = None
) -> list[LabelledPhoto]:
    """Parse a split file (``path, fine_id, coarse_id`` per line) relative to ``root``.

    Every photo must be a file, and with ``classes`` each line's fine and coarse ids must be
    those of classes.csv: checked before any photo is enrolled or searched, so a bad line stops
    the run at once, named, instead of after minutes of enrolment or as a silent miss."""
    path = root / split
    if not path.is_file():
        raise DatasetError(f"split file {path} is missing")
    photos: list[LabelledPhoto] = []
    first_seen: dict[Path, int] = {}
    for line_no, line in enumerate(_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 3:
            raise DatasetError(f"{path}:{line_no}: expected 'path, fine_id, coarse_id'")
        where = f"{path}:{line_no}"
        try:
            photo = LabelledPhoto(root / parts[0].lstrip("/"), int(parts[1]), int(parts[2]), where)
        except ValueError as exc:
            raise DatasetError(f"{where}: class ids must be integers ({exc})") from exc
        # ".." climbs out of the dataset; a photo linked into it from elsewhere is its own
        if ".." in Path(parts[0]).parts or not photo.path.is_file():
            raise DatasetError(f"{where}: {parts[0]} is not a file in {root}")
        # a photo listed twice would be counted twice in the figures
        if (first := first_seen.setdefault(photo.path, line_no)) != line_no:
            raise DatasetError(f"{where}: {parts[0]} is listed twice (line {first} too)")
        photos.append(photo)
    if classes is not None:
        _check_ids(photos, classes)
    if not photos:
        raise DatasetError(f"split file {path} lists no photos")
    return photos


def check_every_product_has_a_photo(
    classes: list[ProductClass], photos: list[LabelledPhoto], split: str
) -> None:
    """Refuse a product with neither an iconic image nor a photo in ``split``: nothing of it
    would be enrolled, so search could never answer it and its photos would count as misses."""
    photographed = {photo.class_id for photo in photos}
    for product in classes:
        if product.iconic is None and product.class_id not in photographed:
            raise DatasetError(
                f"{product.where}: product {product.name!r} (class {product.class_id}) has no "
                f"iconic image and no photo in {split}, so nothing of it can be enrolled; give "
                "it an iconic image path or train photos"
            )


def _check_ids(photos: list[LabelledPhoto], classes: list[ProductClass]) -> None:
    coarse_of = {c.class_id: c.coarse_id for c in classes}
    for photo in photos:
        if photo.class_id not in coarse_of:
            raise DatasetError(f"{photo.where}: class {photo.class_id} is not in classes.csv")
        if photo.coarse_id != coarse_of[photo.class_id]:
            raise DatasetError(
                f"{photo.where}: coarse class {photo.coarse_id} is not class "
                f"{photo.class_id}'s ({coarse_of[photo.class_id]} in classes.csv)"
            )


def _text(path: Path) -> str:
    """A dataset text file, which must be UTF-8 (a byte-order mark is allowed). Read at most one
    byte past the limit, not by ``stat()``: a 5 GB split file took 10 GB of the Pi's memory
    before its first line was found wrong."""
    with path.open("rb") as stream:
        raw = stream.read(MAX_TEXT_BYTES + 1)
    if len(raw) > MAX_TEXT_BYTES:
        raise DatasetError(
            f"{path} is larger than {MAX_TEXT_BYTES >> 20} MiB: not a dataset's classes or "
            "split file"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise DatasetError(
            f"{path}:{line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); save it as UTF-8"
        ) from exc
