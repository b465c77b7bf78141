"""The product catalogue: import from CSV or JSON, validated row by row, and product lookups.

An import never half-applies a bad row and never stops at the first one: every row is checked,
good rows are written, and the report says which rows were rejected and why. Importing the same
file twice changes nothing. Product images are copied into the store's images folder under their
content hash, so re-importing does not duplicate them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.clock import Clock
from hub.config.store import LANGUAGE_CODE
from hub.db import Database, Transaction
from hub.errors import InvalidInput, NotFound
from hub.events import Event, EventBus
from hub.inventory import SKU_PATTERN, Inventory, Sku
from hub.storage import write_whole
from untrusted.files import read_at_most
from untrusted.json_keys import DuplicateKeyError, loads_unique
from vision.errors import ImageError
from vision.imageinfo import EXTENSIONS, JPEG, jpeg_is_complete, read_info, sniff_format

MAX_CATALOG_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
MAX_IMAGE_BYTES = 20 * 1024 * 1024
CATALOG_CHANGED = "catalog.changed"


#: A price as spreadsheets in many locales write it: a decimal comma or point, and thousands
#: grouped with spaces (Excel in Swedish or French puts a no-break space there): "12,90", "7,5",
#: "1 049,00", "1049.5".
PRICE = re.compile(r"(?P<sign>-?)(?P<units>\d+|\d{1,3}(?:[ \u00a0\u202f]\d{3})+)"
                   r"(?:[.,](?P<cents>\d{1,2}))?")

#: A number as a spreadsheet shows one too long for its column: "7,31087E+12", "7.3E+12".
SCIENTIFIC = re.compile(r"\d[.,]?\d*[eE]\+?\d+")


class ProductIn(BaseModel):
    """One product row of a catalogue file."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    sku: Sku
    names: dict[str, str] = Field(min_length=1, description="Name per language code.")
    aliases: dict[str, list[str]] = Field(default_factory=dict, description="Other names.")
    category: str = Field(default="", max_length=100, description="Aisle or category.")
    description: str = Field(default="", max_length=4000, description="Shown on the kiosk.")
    price: Decimal | None = Field(default=None, ge=0, le=1_000_000, decimal_places=2,
                                  description="Price in the store's currency.")
    shelf: str = Field(default="", max_length=50, description="Shelf location, e.g. 'A3'.")
    image: str | None = Field(default=None, max_length=300, description="Image file name, "
                              "relative to the images folder given to the import.")
    stock: int | None = Field(default=None, ge=0, le=1_000_000,
                              description="Starting stock, applied once when the product is new.")

    @field_validator("sku", mode="before")
    @classmethod
    def _numeric_sku(cls, value: Any) -> Any:
        """Catalogues exported with numeric ids give the SKU as a JSON number. A spreadsheet
        shows a long barcode as "7,31087E+12" and saves it so, its last digits gone: that is
        said, since the pattern alone would not tell a store manager what went wrong."""
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and not re.fullmatch(SKU_PATTERN, value.strip()):
            if SCIENTIFIC.fullmatch(value.strip()):
                raise ValueError(
                    f"{value.strip()!r} is a code the spreadsheet shortened to scientific "
                    "notation, losing its last digits: format the column as Text and enter "
                    "the codes again")
            raise ValueError(f"{value.strip()[:70]!r} is not a SKU: 1 to 64 letters, digits, "
                             "'.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("price", mode="before")
    @classmethod
    def _spreadsheet_price(cls, value: Any) -> Any:
        """Spreadsheets in most of Europe write prices with a decimal comma ("12,90") and group
        thousands with spaces ("1 049,00"); neither is ambiguous, so both are read. A currency
        ("19,90 kr") or a point or comma between thousands ("1.049,00", "1,049.00", which mean
        the same in different locales) is refused with what to write instead."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        match = PRICE.fullmatch(text)
        if match is None:
            raise ValueError(
                f"{text[:40]!r} is not a price: write the number alone, without a currency or "
                "a separator between thousands, e.g. 1049.50 or 1049,50")
        units = re.sub(r"\D", "", match["units"])
        # a negative price is read, so that the range check says what is wrong with it
        number = f"{match['sign']}{units}"
        return f"{number}.{match['cents']}" if match["cents"] else number

    @field_validator("stock", mode="before")
    @classmethod
    def _whole_units(cls, value: Any) -> Any:
        """Stock is counted in items; "1,5" or "2.0" from a spreadsheet is not a count."""
        if isinstance(value, str) and not value.strip().isdigit():
            raise ValueError(f"{value.strip()[:40]!r} is not a count of items: write a whole "
                             "number such as 12 (products sold by weight are counted in packs)")
        return value

    @field_validator("names", mode="before")
    @classmethod
    def _no_empty_names(cls, value: Any) -> Any:
        """Shop systems export a language without a name as null or "": that language is left
        out (``voice eval`` reads such catalogues the same way)."""
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if not (v is None or v == "")}
        return value

    @field_validator("names")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        return {_lang(k): _text(v, 200, "name") for k, v in value.items()}

    @field_validator("aliases", mode="before")
    @classmethod
    def _one_alias(cls, value: Any) -> Any:
        """One alias may be given as a plain string, and a language without aliases as null."""
        if value is None:
            return {}
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items() if v is not None}
        return value

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        out = {}
        for lang, items in value.items():
            if len(items) > 20:
                raise ValueError("at most 20 aliases per language")
            out[_lang(lang)] = [_text(a, 200, "alias") for a in items]
        return out


#: Every language of the catalogue's product names, in order.
LANGUAGES_SQL = (
    "SELECT DISTINCT lang.key AS lang FROM products, json_each(products.names) AS lang "
    "ORDER BY lang.key"
)


def _lang(code: str) -> str:
    if not re.fullmatch(LANGUAGE_CODE, code):
        raise ValueError(f"{code!r} is not a language code such as 'en', 'ko' or 'zh'")
    return code


def _text(value: str, limit: int, what: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"empty {what}")
    if len(value) > limit:
        raise ValueError(f"{what} longer than {limit} characters")
    if any(ord(ch) < 32 for ch in value):
        raise ValueError(f"{what} contains control characters")
    return value


@dataclass
class RowProblem:
    """Why one row of a catalogue file was not imported."""

    row: int
    sku: str | None
    errors: list[str]


@dataclass
class ImportReport:
    """What an import did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    rejected: list[RowProblem] = field(default_factory=list)
    images: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "rejected": [p.__dict__ for p in self.rejected],
            "images_added": len(self.images),
        }


@dataclass(frozen=True)
class Product:
    """A product as the kiosk and staff see it."""

    sku: str
    names: dict[str, str]
    aliases: dict[str, list[str]]
    category: str
    description: str
    price_cents: int | None
    shelf: str
    image: str | None


ImportListener = Callable[[ImportReport], None]


class Catalog:
    """Reads catalogue files into the products table and answers product lookups."""

    def __init__(self, db: Database, clock: Clock, inventory: Inventory, images_dir: Path,
                 bus: EventBus | None = None, max_image_pixels: int = 50_000_000) -> None:
        self.db = db
        self.max_image_pixels = max_image_pixels
        self.clock = clock
        self.inventory = inventory
        self.images_dir = images_dir
        self.bus = bus
        self._listeners: list[ImportListener] = []
        self._seen: tuple[int, float | None] | None = None  # fingerprint() after the last look

    def add_listener(self, listener: ImportListener) -> None:
        """Call ``listener`` after every import that changed something (to rebuild an index)."""
        self._listeners.append(listener)

    # --- import -----------------------------------------------------------------------------

    def import_file(self, path: Path, images: Path | None = None) -> ImportReport:
        """Import a ``.csv`` or ``.json`` catalogue; images are looked up beside it by default."""
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".json"):
            raise InvalidInput(f"{path}: use a .csv or .json catalogue file")
        try:
            raw = read_within(path, MAX_CATALOG_BYTES, str(path))
        except FileNotFoundError:
            raise InvalidInput(f"{path}: file not found") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise _not_utf8(path, raw, exc) from None
        rows = list(_json_rows(text, path) if suffix == ".json" else _csv_rows(text, path))
        return self.import_rows(rows, images if images is not None else path.parent)

    def import_rows(self, rows: list[tuple[int, Any]], images: Path) -> ImportReport:
        """Validate rows given as (row number, fields) and write the good ones in one transaction;
        listeners hear of the change only after it has committed."""
        if len(rows) > MAX_ROWS:
            raise InvalidInput(f"a catalogue may have at most {MAX_ROWS} products")
        report = ImportReport()
        seen: set[str] = set()
        with self.db.transaction() as tx:
            for number, fields in rows:
                product, image = self._check_row(number, fields, images, seen, report)
                if product is not None:
                    seen.add(product.sku)
                    self._write(tx, product, image, report)
            if report.added or report.updated or report.images:
                tx.after_commit(lambda: self._announce(report))
        return report

    def _check_row(self, number: int, fields: Any, images: Path, seen: set[str],
                   report: ImportReport) -> tuple[ProductIn | None, _ImageFile | None]:
        """The row as a product and its image, or (None, None) with the reason recorded."""
        if not isinstance(fields, dict):
            report.rejected.append(RowProblem(number, None, ["row is not a JSON object"]))
            return None, None
        sku = fields.get("sku") if isinstance(fields.get("sku"), str) else None
        try:
            product = ProductIn.model_validate(fields)
        except ValidationError as exc:
            report.rejected.append(RowProblem(number, sku, _errors(exc)))
            return None, None
        if product.sku in seen:
            report.rejected.append(RowProblem(number, sku, ["SKU appears twice in the file"]))
            return None, None
        image = None
        if product.image:
            try:
                data = _check_image(images, product.image, self.max_image_pixels)
            except InvalidInput as exc:
                report.rejected.append(RowProblem(number, sku, [exc.message]))
                return None, None
            image = _ImageFile.of(product.sku, data)
        return product, image

    def _announce(self, report: ImportReport) -> None:
        """After the import committed: rebuild indexes and tell listeners what changed."""
        self._seen = self.fingerprint()
        for listener in self._listeners:
            listener(report)
        if self.bus is not None:
            self.bus.publish(Event(CATALOG_CHANGED, {"skus": report.added + report.updated}))

    def fingerprint(self) -> tuple[int, float | None]:
        """How many products there are and when one last changed: what an import changes."""
        row = self.db.query_one("SELECT count(*) AS n, max(updated_at) AS t FROM products")
        return (int(row["n"]), row["t"]) if row else (0, None)

    def notice_other_imports(self) -> bool:
        """Tell the listeners (text search, the voice grammar) about a catalogue another process
        imported since the last look (``retail-hub catalog import`` beside the running hub; the
        kiosk had gone on answering from the catalogue it started with). Returns whether there
        was one."""
        current = self.fingerprint()
        if self._seen is None or current == self._seen:
            self._seen = current
            return False
        self._announce(ImportReport())
        return True

    def _write(self, tx: Transaction, product: ProductIn, image: _ImageFile | None,
               report: ImportReport) -> None:
        now = self.clock.now()
        image_rel = image.rel if image else None
        values = {
            "names": json.dumps(product.names, ensure_ascii=False, sort_keys=True),
            "aliases": json.dumps(product.aliases, ensure_ascii=False, sort_keys=True),
            "category": product.category,
            "description": product.description,
            "price_cents": None if product.price is None else int(product.price * 100),
            "shelf": product.shelf,
            "image": image_rel,
        }
        row = tx.execute(
            "SELECT names, aliases, category, description, price_cents, shelf, image "
            "FROM products WHERE sku = ?",
            (product.sku,),
        ).fetchone()
        if row is None:
            tx.execute(
                "INSERT INTO products (sku, names, aliases, category, description, price_cents, "
                "shelf, image, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (product.sku, *values.values(), now),
            )
            report.added.append(product.sku)
        elif tuple(row) != tuple(values.values()):
            tx.execute(
                "UPDATE products SET names = ?, aliases = ?, category = ?, description = ?, "
                "price_cents = ?, shelf = ?, image = ?, updated_at = ? WHERE sku = ?",
                (*values.values(), now, product.sku),
            )
            report.updated.append(product.sku)
        else:
            report.unchanged.append(product.sku)
        if image is not None:
            self._store_image(tx, product.sku, image, report)
        if product.stock:
            ref = f"catalog-initial:{product.sku}"
            seen = tx.execute("SELECT 1 FROM stock_ledger WHERE ref = ?", (ref,)).fetchone()
            moved = tx.execute("SELECT 1 FROM stock_ledger WHERE sku = ? LIMIT 1",
                               (product.sku,)).fetchone()
            if not seen and not moved:
                self.inventory.apply(tx, sku=product.sku, qty=product.stock, reserved_qty=0,
                                     reason="receipt", ref=ref, note="starting stock")

    def _store_image(self, tx: Transaction, sku: str, image: _ImageFile,
                     report: ImportReport) -> None:
        target = self.images_dir / image.rel
        if not target.exists():
            write_whole(target, image.data)
        # A new catalogue image replaces the old one (and, by cascade, its embeddings): a wrong
        # image corrected in the shop system must stop steering photo search.
        old_paths = [row[0] for row in tx.execute(
            "DELETE FROM product_images WHERE sku = ? AND kind = 'iconic' AND sha256 != ? "
            "RETURNING path", (sku, image.sha256))]
        replaced = len(old_paths)
        for path in old_paths:  # its file too, once the change is kept (years of imports add up)
            tx.after_commit(partial((self.images_dir / path).unlink, missing_ok=True))
        existing = tx.execute("SELECT kind FROM product_images WHERE sku = ? AND sha256 = ?",
                              (sku, image.sha256)).fetchone()
        if existing is None:
            tx.execute(
                "INSERT INTO product_images (sku, path, kind, sha256, added_at) "
                "VALUES (?, ?, 'iconic', ?, ?)",
                (sku, image.rel, image.sha256, self.clock.now()),
            )
            report.images.append(image.rel)
        else:
            if existing[0] != "iconic":
                # a staff photo chosen as the catalogue image is the catalogue's from now on, so
                # removing "that photo" cannot take the product's image away
                tx.execute("UPDATE product_images SET kind = 'iconic' WHERE sku = ? AND sha256 = ?",
                           (sku, image.sha256))
            if replaced:
                report.images.append(image.rel)

    # --- lookups ----------------------------------------------------------------------------

    def get(self, sku: str) -> Product:
        row = self.db.query_one("SELECT * FROM products WHERE sku = ?", (sku,))
        if row is None:
            raise NotFound(f"no product with SKU {sku!r}")
        return _product(row)

    def all(self) -> list[Product]:
        return [_product(r) for r in self.db.query("SELECT * FROM products ORDER BY sku")]

    def images(self, sku: str) -> list[dict[str, Any]]:
        return self.db.query(
            "SELECT id, path, kind, sha256, added_at FROM product_images WHERE sku = ? ORDER BY id",
            (sku,),
        )


@dataclass(frozen=True)
class _ImageFile:
    """An image to store under its content hash: ``rel`` is its path in the images folder."""

    data: bytes
    sha256: str
    rel: str

    @classmethod
    def of(cls, sku: str, data: bytes) -> _ImageFile:
        digest = hashlib.sha256(data).hexdigest()
        return cls(data, digest, f"{sku}/{digest[:16]}{EXTENSIONS[sniff_format(data)]}")


def _product(row: dict[str, Any]) -> Product:
    return Product(
        sku=row["sku"],
        names=json.loads(row["names"]),
        aliases=json.loads(row["aliases"]),
        category=row["category"],
        description=row["description"],
        price_cents=row["price_cents"],
        shelf=row["shelf"],
        image=row["image"],
    )


def _check_image(folder: Path, name: str, max_pixels: int) -> bytes:
    """The bytes of image file ``name`` inside ``folder`` (read once, then stored); refuses paths
    that climb out of it, and images whose header declares more than ``max_pixels`` (photo search
    could never embed them, the kiosk would show them, and every start logged them again).

    The formats are those photo search takes from an upload (JPEG, PNG, WebP), under the same
    header checks: a WebP catalogue image was refused while a WebP photo of it was enrolled.

    Why by the path's own parts and not by resolving it: a catalogue file is untrusted input, so
    an absolute path or a ".." is refused, but links inside the images folder were put there by
    whoever runs the store (a dataset laid out with linked photo folders) and are followed."""
    relative = PurePosixPath(name.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise InvalidInput(f"image {name!r} is outside the images folder")
    candidate = folder / relative
    if not candidate.is_file():
        raise InvalidInput(f"image {name!r} not found in {folder}")
    data = read_within(candidate, MAX_IMAGE_BYTES, f"image {name!r}")
    try:
        sniff_format(data)
    except ImageError:
        raise InvalidInput(f"image {name!r} is not a JPEG, PNG or WebP file") from None
    try:
        info = read_info(data)
    except ImageError as exc:
        raise InvalidInput(f"image {name!r}: {exc.message}") from exc
    if info.format == JPEG and not jpeg_is_complete(data):
        # photo search would skip it on every start, and the kiosk show it half grey
        raise InvalidInput(f"image {name!r}: the JPEG file is cut short (no end marker); "
                           "save or export it again")
    if info.pixels > max_pixels:
        raise InvalidInput(
            f"image {name!r} is {info.width}x{info.height} ({info.pixels / 1e6:.0f} megapixels); "
            f"the limit is {max_pixels / 1e6:.0f} (vision.max_pixels): save a smaller copy"
        )
    return data


def read_within(path: Path, limit: int, what: str) -> bytes:
    """The bytes of ``path``, or InvalidInput naming ``what`` once it holds more than ``limit``.

    Why not by ``stat()``: a device, FIFO or /proc file reports size 0, so /dev/zero passed that
    check and was read until the kernel killed the command (on the hub's own Pi). At most one
    byte past the limit is read."""
    data = read_at_most(path, limit)
    if data is None:
        raise InvalidInput(f"{what} is larger than {limit // 2**20} MiB")
    return data


def _errors(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        out.append(f"{where}: {message}" if where else message)
    return out


def _json_rows(text: str, path: Path) -> Iterator[tuple[int, Any]]:
    try:
        data = loads_unique(text)
    except DuplicateKeyError as exc:  # the second "price" of a row decides nothing silently
        raise InvalidInput(exc.at(str(path))) from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:  # a few kB of "[[[[..." nest past Python's limit
        raise InvalidInput(f"{path}: JSON nested too deeply to be a catalogue") from None
    if isinstance(data, dict) and isinstance(data.get("products"), list):
        data = data["products"]
    if not isinstance(data, list):
        raise InvalidInput(f"{path}: expected a list of products or {{\"products\": [...]}}")
    yield from enumerate(data, start=1)


def _not_utf8(path: Path, raw: bytes, exc: UnicodeDecodeError) -> InvalidInput:
    """Where the file stops being UTF-8 and how to save it so: Excel on Windows writes CSV in the
    system's code page unless told otherwise. Not guessed: a Korean or Chinese code page read as
    Western European would give every name the wrong letters without a word."""
    line = raw.count(b"\n", 0, exc.start) + 1
    start = raw.rfind(b"\n", 0, exc.start) + 1
    end = raw.find(b"\n", exc.start)
    shown = raw[start : end if end >= 0 else len(raw)][:80].decode("utf-8", "replace").strip()
    return InvalidInput(
        f"{path} is not UTF-8 text (line {line}: {shown!r}). Save it as UTF-8: in Excel, "
        f"'Save As' > 'CSV UTF-8'; or convert it, e.g. for a Western European file: "
        f"iconv -f WINDOWS-1252 -t UTF-8 '{path}' > products-utf8.csv")


def _csv_rows(text: str, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """CSV columns: sku, name or name_<lang>, aliases_<lang> (';' separated), category,
    description, price, shelf, image, stock. Columns are separated by commas, or by semicolons
    or tabs when the header line uses those (Excel's "CSV" in locales with a decimal comma)."""
    header = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=header.count)
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    if not reader.fieldnames or "sku" not in reader.fieldnames:
        raise InvalidInput(f"{path}: the first line must name the columns and include 'sku' "
                           f"(separated by commas, semicolons or tabs); it is {header[:120]!r}")
    for record in reader:
        number = reader.line_num
        fields: dict[str, Any] = {"names": {}, "aliases": {}}
        for column, value in record.items():
            if column is None:
                fields["__extra_columns__"] = value
                continue
            value = (value or "").strip()
            if column == "name":
                column = "name_en"
            if column.startswith("name_"):
                if value:
                    fields["names"][column[5:]] = value
            elif column.startswith("aliases_"):
                if value:
                    fields["aliases"][column[8:]] = [a for a in value.split(";") if a.strip()]
            elif column in ("price", "stock", "image"):
                if value:
                    fields[column] = value
            else:
                fields[column] = value
        yield number, fields
