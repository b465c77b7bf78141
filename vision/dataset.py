"""Reads a product photo collection laid out like the Grocery Store dataset: ``classes.csv`` (one
product per row, with its catalogue image) and split files of ``path, fine_id, coarse_id`` lines.

Why here: the eval command, the bench and the offline training all enrol the same collection, and
a wrong column or path must fail with a message that names the file and line, not a KeyError.
"""

from __future__ import annotations

import csv
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
    iconic: Path
    #: Line of classes.csv, for errors about this product.
    line: int = 0


@dataclass(frozen=True)
class LabelledPhoto:
    """A photo and the fine class it shows; ``where`` is its split file and line, for errors."""

    path: Path
    class_id: int
    coarse_id: int
    where: str = ""


def read_classes(root: Path) -> list[ProductClass]:
    """Parse ``classes.csv``; products come back ordered by class id."""
    path = root / "classes.csv"
    if not path.is_file():
        raise DatasetError(f"{path} is missing; a dataset folder needs classes.csv")
    classes: list[ProductClass] = []
    rows = csv.reader(_text(path).splitlines())
    header = next(rows, None)
    if header and len(header) > 1 and header[1].strip().lstrip("-").isdigit():
        raise DatasetError(
            f"{path}:1: the first line must name the columns (Class Name, Class ID, Coarse Class "
            f"Name, Coarse Class ID, Iconic Image Path); it holds product {header[0]!r}"
        )
    for line_no, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) < 5:
            raise DatasetError(f"{path}:{line_no}: expected at least 5 columns, got {len(row)}")
        try:
            classes.append(
                ProductClass(
                    class_id=int(row[1]),
                    name=row[0].strip(),
                    coarse_id=int(row[3]),
                    coarse_name=row[2].strip(),
                    iconic=root / row[4].strip().lstrip("/"),
                    line=line_no,
                )
            )
        except ValueError as exc:
            raise DatasetError(f"{path}:{line_no}: class ids must be integers ({exc})") from exc
    if not classes:
        raise DatasetError(f"{path} lists no products")
    return sorted(classes, key=lambda c: c.class_id)


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
    """A dataset text file, which must be UTF-8 (a byte-order mark is allowed)."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise DatasetError(
            f"{path}:{line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); save it as UTF-8"
        ) from exc
