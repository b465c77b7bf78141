"""Catalogue import: CSV and JSON, bad rows reported and skipped, idempotent, images, the demo."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from hub.demo.store import CATALOG, IMAGES
from hub.errors import InvalidInput
from hub.services import Services, build_services
from tests.fixtures.hostile_files import fifo_of

JPEG = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes()

CSV = """sku,name_en,name_ko,aliases_en,category,price,shelf,image,stock
MILK-1,Whole milk,우유,milk;full fat milk,Dairy,12.50,C1,milk.jpg,20
BAD ONE,Broken sku,,,Dairy,1.00,C1,,1
EGG-1,,,,Dairy,3.00,C2,,5
PRICE-1,Bread,,,Bakery,abc,D1,,
NEG-1,Butter,,,Dairy,-1,C3,,
IMG-1,Cheese,,,Dairy,30,C4,../../etc/passwd,
IMG-2,Yoghurt,,,Dairy,30,C4,missing.jpg,
MILK-1,Whole milk again,,,Dairy,12.50,C1,,
"""


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_with_bad_rows(services: Services, tmp_path: Path) -> None:
    (tmp_path / "milk.jpg").write_bytes(JPEG)
    report = services.catalog.import_file(write(tmp_path, "cat.csv", CSV))
    assert report.added == ["MILK-1"]
    problems = {p.row: (p.sku, " | ".join(p.errors)) for p in report.rejected}
    assert set(problems) == {3, 4, 5, 6, 7, 8, 9}
    assert "sku" in problems[3][1]
    assert "names" in problems[4][1]
    assert "price" in problems[5][1]
    assert "greater than or equal to 0" in problems[6][1]
    assert "outside the images folder" in problems[7][1]
    assert "not found" in problems[8][1]
    assert "twice" in problems[9][1]
    product = services.catalog.get("MILK-1")
    assert product.names == {"en": "Whole milk", "ko": "우유"}
    assert product.aliases == {"en": ["milk", "full fat milk"]}
    assert product.price_cents == 1250
    assert services.inventory.stock("MILK-1").on_hand == 20
    image = services.catalog.images("MILK-1")
    assert len(image) == 1 and (services.config.store.images_dir / image[0]["path"]).is_file()


def test_reimport_changes_nothing_and_updates_are_applied(services: Services,
                                                          tmp_path: Path) -> None:
    rows = [{"sku": "A", "names": {"en": "Apple"}, "price": 1.5, "stock": 10}]
    path = write(tmp_path, "c.json", json.dumps(rows))
    first = services.catalog.import_file(path)
    second = services.catalog.import_file(path)
    assert (first.added, second.added, second.unchanged) == (["A"], [], ["A"])
    rows[0]["price"] = 2.0
    rows[0]["stock"] = 99
    third = services.catalog.import_file(write(tmp_path, "c.json", json.dumps(rows)))
    assert third.updated == ["A"]
    assert services.catalog.get("A").price_cents == 200
    assert services.inventory.stock("A").on_hand == 10, "starting stock applies only once"
    assert services.db.query_one("SELECT count(*) AS n FROM stock_ledger")["n"] == 1


def test_json_rows_of_the_wrong_shape(services: Services, tmp_path: Path) -> None:
    rows = [{"sku": "A", "names": {"en": "Apple"}}, "not an object",
            {"sku": "B", "names": {"EN!": "x"}}, {"sku": "C", "names": {"en": "C"}, "colour": 1},
            {"sku": "D", "names": {"en": "x" * 201}}, {"sku": "E", "names": {"en": "a\x00b"}}]
    report = services.catalog.import_file(write(tmp_path, "c.json", json.dumps({"products": rows})))
    assert report.added == ["A"]
    errors = {p.row: " ".join(p.errors) for p in report.rejected}
    assert errors[2] == "row is not a JSON object"
    assert "language code" in errors[3]
    assert "unknown field" in errors[4]
    assert "longer than 200" in errors[5]
    assert "control characters" in errors[6]


def test_rows_as_shop_systems_export_them(services: Services, tmp_path: Path) -> None:
    """Why: ``voice eval`` reads these shapes, so the hub must import the same catalogue the
    same way, or the figures would be for products the kiosk does not have."""
    rows = [{"sku": 1003, "names": {"en": "Lurpak Spreadable 500g", "ko": None, "zh": ""},
             "aliases": {"en": "butter spread", "ko": None}},
            {"sku": "F", "names": {"en": "Fig"}, "aliases": None}]
    report = services.catalog.import_file(write(tmp_path, "c.json", json.dumps(rows)))
    assert report.added == ["1003", "F"], report.rejected
    product = services.catalog.get("1003")
    assert product.names == {"en": "Lurpak Spreadable 500g"}
    assert product.aliases == {"en": ["butter spread"]}
    assert services.catalog.get("F").aliases == {}


@pytest.mark.parametrize(("name", "content", "message"), [
    ("c.json", "{not json", "not valid JSON (line 1"),
    ("c.json", '{"items": []}', "expected a list of products"),
    ("c.csv", "name,price\nx,1\n", "include 'sku'"),
    ("c.xml", "<x/>", "use a .csv or .json"),
])
def test_unusable_files(services: Services, tmp_path: Path, name: str, content: str,
                        message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
        services.catalog.import_file(write(tmp_path, name, content))


def test_a_key_given_twice_in_a_json_catalogue_is_refused_with_its_line(
    services: Services, tmp_path: Path
) -> None:
    """Why: json keeps the last of two equal keys without a word, so a row with "price" twice
    (one edited, one copied) was imported at whichever came last, and nothing said so."""
    path = write(tmp_path, "c.json", '[{"sku": "A-1", "names": {"en": "Apple"}, "price": 3},\n'
                 ' {"sku": "B-1", "names": {"en": "Bread"},\n  "price": 2, "price": 20}]\n')
    with pytest.raises(InvalidInput) as refused:
        services.catalog.import_file(path)
    assert refused.value.message == f'{path}:3: the key "price" appears twice in one object'
    assert services.catalog.all() == []  # refused whole, as a file that is not JSON


def test_a_spreadsheet_saved_as_in_a_decimal_comma_locale_imports(services: Services,
                                                                   tmp_path: Path) -> None:
    """Why: Excel in a Swedish (or German, French...) locale saves "CSV" with semicolons and
    prices like "12,90": the file was refused as having no 'sku' column, and with commas each
    row's price as "not a valid decimal"."""
    semicolons = write(tmp_path, "se.csv", 'sku;name;aliases_en;price;shelf;stock\r\n'
                       'MJ-1;Mjölk 1,5 %;"milk;semi-skimmed milk";12,90;C1;20\r\n'
                       'BR-2;Bröd;;29,5;B2;5\r\nBAD-3;Ost;;12,905;B3;1\r\n')
    report = services.catalog.import_file(semicolons)
    assert report.added == ["MJ-1", "BR-2"]
    assert [(r.sku, r.errors[0].split(":")[0]) for r in report.rejected] == [("BAD-3", "price")]
    milk = services.catalog.get("MJ-1")
    assert (milk.names, milk.aliases["en"], milk.price_cents) == (
        {"en": "Mjölk 1,5 %"}, ["milk", "semi-skimmed milk"], 1290)
    assert services.catalog.get("BR-2").price_cents == 2950
    tabs = write(tmp_path, "tabs.csv", "sku\tname\tprice\nTB-1\tTe\t4,00\n")
    commas = write(tmp_path, "commas.csv", 'sku,name,price\nCM-1,Kaffe,"49,90"\n')
    assert services.catalog.import_file(tabs).added == ["TB-1"]
    assert services.catalog.import_file(commas).added == ["CM-1"]
    assert services.catalog.get("CM-1").price_cents == 4990


def test_spreadsheet_prices_with_thousands_or_a_currency(services: Services,
                                                          tmp_path: Path) -> None:
    """Why: a price list formatted in Excel exports "1 049,00" (a no-break space between the
    thousands) and sometimes "19,90 kr"; both were refused with pydantic's "Input should be a
    valid decimal", a stock of "1,5" with "unable to parse string as an integer" and a barcode
    shown as "7,31087E+12" with a regular expression, none of which says what to write."""
    listing = write(tmp_path, "se.csv", "sku;name;price;stock\n"
                    "TV-1;TV;1\u00a0049,00;2\nKF-2;Kaffe;1 049;3\nMJ-3;Mjölk;19,90 kr;4\n"
                    "OS-4;Ost;1.049,00;1\nAP-5;Äpplen;24,90;1,5\n7,31087E+12;Te;4;1\n"
                    "A 1;Salt;5;1\n")
    report = services.catalog.import_file(listing)
    assert report.added == ["TV-1", "KF-2"]
    assert services.catalog.get("TV-1").price_cents == 104900
    assert services.catalog.get("KF-2").price_cents == 104900
    errors = {r.sku: r.errors for r in report.rejected}
    assert errors["MJ-3"] == ["price: '19,90 kr' is not a price: write the number alone, without "
                              "a currency or a separator between thousands, e.g. 1049.50 or "
                              "1049,50"]
    assert errors["OS-4"][0].startswith("price: '1.049,00' is not a price")
    assert errors["AP-5"] == ["stock: '1,5' is not a count of items: write a whole number such "
                              "as 12 (products sold by weight are counted in packs)"]
    # a barcode column Excel showed in scientific notation, and a SKU with a space
    assert [r.errors for r in report.rejected[3:]] == [
        ["sku: '7,31087E+12' is a code the spreadsheet shortened to scientific notation, losing "
         "its last digits: format the column as Text and enter the codes again"],
        ["sku: 'A 1' is not a SKU: 1 to 64 letters, digits, '.', '_' or '-', starting with a "
         "letter or digit"]]


def test_a_file_in_the_windows_code_page_is_refused_with_the_way_to_save_it(
        services: Services, tmp_path: Path) -> None:
    """Why: "is not UTF-8 text" did not say where or what to do; Excel on Windows saves CSV in
    the system's code page unless told otherwise. Not guessed: Korean or Chinese code pages read
    as Western European would give every name the wrong letters without a word."""
    ansi = tmp_path / "ansi.csv"
    ansi.write_bytes("sku;name;price\nMJ-1;Mjölk;12,90\n".encode("cp1252"))
    with pytest.raises(InvalidInput) as refused:
        services.catalog.import_file(ansi)
    message = refused.value.message
    assert "is not UTF-8 text (line 2: 'MJ-1;Mj\ufffdlk;12,90')" in message
    assert "'CSV UTF-8'" in message and "iconv -f WINDOWS-1252 -t UTF-8" in message
    assert services.catalog.all() == []


def test_non_utf8_and_fake_images(services: Services, tmp_path: Path) -> None:
    bad = tmp_path / "c.csv"
    bad.write_bytes(b"sku,name\n\xff\xfe,x\n")
    with pytest.raises(InvalidInput, match="not UTF-8"):
        services.catalog.import_file(bad)
    (tmp_path / "fake.jpg").write_bytes(b"GIF89a not a jpeg")
    report = services.catalog.import_rows(
        [(1, {"sku": "A", "names": {"en": "A"}, "image": "fake.jpg"})], tmp_path)
    assert report.rejected[0].errors == ["image 'fake.jpg' is not a JPEG, PNG or WebP file"]


def test_webp_catalogue_images_are_taken_as_webp_photos_are(
    services: Services, tmp_path: Path
) -> None:
    """Why: a WebP catalogue image was refused as "not a JPEG or PNG file" while a WebP photo of
    the same product was enrolled; it passes the same header checks, the pixel limit included."""
    webp = cv2.imencode(".webp", np.full((8, 8, 3), 200, np.uint8))[1].tobytes()
    (tmp_path / "pear.webp").write_bytes(webp)
    vp8l = webp.find(b"VP8L")
    assert vp8l > 0, "lossless WebP expected (OpenCV's default quality)"
    bits = (9_999 | 9_999 << 14).to_bytes(4, "little")  # 10,000 x 10,000 in the VP8L header
    huge = webp[: vp8l + 9] + bits + webp[vp8l + 13 :]
    (tmp_path / "huge.webp").write_bytes(huge)
    report = services.catalog.import_rows(
        [(1, {"sku": "P", "names": {"en": "Pear"}, "image": "pear.webp"}),
         (2, {"sku": "H", "names": {"en": "Huge"}, "image": "huge.webp"})], tmp_path)
    assert report.added == ["P"]
    stored = services.catalog.get("P").image
    assert stored is not None and stored.endswith(".webp")
    assert (services.config.store.images_dir / stored).read_bytes() == webp
    assert "10000x10000 (100 megapixels)" in report.rejected[0].errors[0]


def test_images_too_large_to_search_or_show_are_refused_at_import(
    services: Services, tmp_path: Path
) -> None:
    """Why: a 10,000 x 10,000 catalogue image was imported, could never be embedded, and every
    start logged it again; a header that cannot be read is refused too."""
    sof = JPEG.find(b"\xff\xc0")
    huge = JPEG[: sof + 5] + (10_000).to_bytes(2, "big") * 2 + JPEG[sof + 9 :]
    (tmp_path / "huge.jpg").write_bytes(huge)
    (tmp_path / "headless.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(64))
    report = services.catalog.import_rows(
        [(1, {"sku": "A", "names": {"en": "A"}, "image": "huge.jpg"}),
         (2, {"sku": "B", "names": {"en": "B"}, "image": "headless.jpg"})], tmp_path)
    problems = {p.row: p.errors[0] for p in report.rejected}
    assert "10000x10000 (100 megapixels)" in problems[1] and "vision.max_pixels" in problems[1]
    assert problems[2].startswith("image 'headless.jpg': ")
    assert report.added == []


def test_demo_catalogue_imports_cleanly(services: Services) -> None:
    report = services.catalog.import_file(CATALOG, IMAGES)
    assert len(report.added) == 81 and not report.rejected
    assert len(report.images) == 81
    oat = services.text_search.search("oat milk", limit=1)
    assert services.catalog.get(oat[0].sku).names["en"] == "Oatly Oat Milk"
    assert all(level.on_hand > 0 for level in services.inventory.all_stock())


def test_images_in_a_linked_folder_are_read_and_climbing_out_is_refused(
    services: Services, tmp_path: Path
) -> None:
    """Why: a dataset laid out with its photo folders linked in from elsewhere (as the vision eval
    contract's DATASET_DIR may be) had every image refused as outside the images folder, because
    the check resolved links; it now refuses only what the path itself says: absolute or "..".
    """
    shared = tmp_path / "shared" / "photos"
    shared.mkdir(parents=True)
    (shared / "cheese.jpg").write_bytes(JPEG)
    store = tmp_path / "store"
    store.mkdir()
    (store / "photos").symlink_to(shared, target_is_directory=True)
    csv = (
        "sku,name_en,price,image\n"
        "IMG-1,Cheese,30,photos/cheese.jpg\n"
        f"IMG-2,Cheddar,30,{shared / 'cheese.jpg'}\n"
        "IMG-3,Brie,30,photos/../../shared/photos/cheese.jpg\n"
    )
    report = services.catalog.import_file(write(store, "cat.csv", csv))
    assert report.added == ["IMG-1"]
    refused = {p.sku: " ".join(p.errors) for p in report.rejected}
    assert set(refused) == {"IMG-2", "IMG-3"}
    assert all("outside the images folder" in e for e in refused.values())


def test_a_new_catalogue_image_replaces_the_old_one(services: Services, tmp_path: Path) -> None:
    """Why: re-importing a product with a corrected image kept the wrong one enrolled, so it went
    on steering photo search; staff reference photos stay. The old image's file went on taking
    room on the disk after its row was gone."""
    (tmp_path / "a.jpg").write_bytes(JPEG)
    (tmp_path / "b.jpg").write_bytes(JPEG + b"\x00")
    row = {"sku": "P", "names": {"en": "Pear"}, "image": "a.jpg"}
    services.catalog.import_rows([(1, row)], tmp_path)
    old = services.db.query_one("SELECT path FROM product_images WHERE sku = 'P'")
    assert old is not None
    old_file = services.config.store.images_dir / old["path"]
    assert old_file.is_file()
    with services.db.transaction() as tx:
        tx.execute(
            "INSERT INTO product_images (sku, path, kind, sha256, added_at) "
            "VALUES ('P', 'P/ref.jpg', 'reference', 'ref', 0)"
        )
    report = services.catalog.import_rows([(1, {**row, "image": "b.jpg"})], tmp_path)
    assert report.images
    kinds = services.db.query("SELECT kind, sha256 FROM product_images WHERE sku = 'P'")
    assert sorted(r["kind"] for r in kinds) == ["iconic", "reference"]
    iconic = next(r["sha256"] for r in kinds if r["kind"] == "iconic")
    assert iconic == hashlib.sha256(JPEG + b"\x00").hexdigest()
    assert not old_file.exists()


def test_a_staff_photo_chosen_as_the_catalogue_image_becomes_the_catalogue_image(
    services: Services, tmp_path: Path
) -> None:
    """Why: the import found the staff photo's row with the same bytes and left it a
    'reference' photo, so removing that photo took the product's catalogue image away."""
    (tmp_path / "a.jpg").write_bytes(JPEG)
    digest = hashlib.sha256(JPEG).hexdigest()
    services.catalog.import_rows([(1, {"sku": "P", "names": {"en": "Pear"}})], tmp_path)
    with services.db.transaction() as tx:
        tx.execute(
            "INSERT INTO product_images (sku, path, kind, sha256, added_at) "
            "VALUES ('P', ?, 'reference', ?, 0)",
            (f"P/{digest[:16]}.jpg", digest),
        )
    services.catalog.import_rows([(1, {"sku": "P", "names": {"en": "Pear"}, "image": "a.jpg"})],
                                 tmp_path)
    rows = services.db.query("SELECT kind FROM product_images WHERE sku = 'P'")
    assert [r["kind"] for r in rows] == ["iconic"]


def test_a_catalogue_imported_by_another_process_reaches_the_running_hub(
    services: Services, tmp_path: Path
) -> None:
    """Why: `retail-hub catalog import` beside a running hub changed the database, but the
    kiosk's text search (and the voice grammar) went on with the catalogue the hub started
    with, until a restart."""
    assert services.catalog.notice_other_imports() is False  # the first look is the baseline
    assert services.text_search.search("pear") == []
    other = build_services(services.config, services.clock, with_features=False)  # the CLI
    try:
        other.catalog.import_rows([(1, {"sku": "P", "names": {"en": "Pear"}})], tmp_path)
    finally:
        other.close()
    assert services.catalog.notice_other_imports() is True
    assert services.text_search.search("pear")[0].sku == "P"
    assert services.catalog.notice_other_imports() is False  # told once
    services.catalog.import_rows([(1, {"sku": "Q", "names": {"en": "Quince"}})], tmp_path)
    assert services.catalog.notice_other_imports() is False  # its own import needs no telling


def test_names_under_language_tags_are_listened_for_as_their_language(
    services: Services, tmp_path: Path
) -> None:
    """The catalogue keeps names under tags such as "en-GB" (shop systems write them); voice
    search looks names up by the bare code, so such a product could not be asked for."""
    from hub.voice_search import catalog_entries

    catalog = [{"sku": "OAT-1", "names": {"en-GB": "Oat Milk", "en-US": "Oat Beverage"},
                "aliases": {"en-GB": ["oat drink"]}, "price": 2.5, "shelf": "A1"}]
    report = services.catalog.import_file(write(tmp_path, "cat.json", json.dumps(catalog)))
    assert report.added == ["OAT-1"], report
    (entry,) = [e for e in catalog_entries(services.catalog) if e.sku == "OAT-1"]
    assert entry.names == {"en": "Oat Milk"}
    assert entry.aliases == {"en": ["Oat Beverage", "oat drink"]}


def test_a_catalogue_that_is_no_regular_file_is_read_only_to_its_limit(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why: the size was taken from stat(), which says 0 for a device or FIFO, so
    'catalog import /dev/zero' read until the kernel killed it at 24 GB."""
    monkeypatch.setattr("hub.catalog.MAX_CATALOG_BYTES", 1 << 20)
    with fifo_of(tmp_path / "c.json", b" " * ((1 << 20) + 1)) as fifo:
        with pytest.raises(InvalidInput, match=r"c\.json is larger than 1 MiB"):
            services.catalog.import_file(fifo)


def test_a_catalogue_nested_too_deeply_is_refused_in_a_sentence(
    services: Services, tmp_path: Path
) -> None:
    """Why: one product with a field nested 5 000 deep (10 kB) ended in a RecursionError."""
    deep = '[{"sku": "A", "names": {"en": "A"}, "description": ' + "[" * 5000 + "]" * 5000 + "}]"
    with pytest.raises(InvalidInput, match=r"c\.json: JSON nested too deeply"):
        services.catalog.import_file(write(tmp_path, "c.json", deep))


def test_a_cut_short_jpeg_is_refused_as_photo_search_refuses_it(
    services: Services, tmp_path: Path
) -> None:
    """Why: a JPEG without its end marker was imported ("images_added": 1), and photo search,
    which refuses such a file, then skipped it on every start."""
    (tmp_path / "cut.jpg").write_bytes(JPEG[:-2])  # without the end-of-image marker
    report = services.catalog.import_rows(
        [(1, {"sku": "A", "names": {"en": "A"}, "image": "cut.jpg"})], tmp_path)
    assert report.added == [] and report.images == []
    assert report.rejected[0].errors == [
        "image 'cut.jpg': the JPEG file is cut short (no end marker); save or export it again"]
