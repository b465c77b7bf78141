"""Maintainers' script: regenerate ``catalog.json`` and ``images/`` from the Grocery Store dataset.

    python -m hub.demo.build_catalog ../shared/datasets/grocery

Not used at run time: the demo reads the generated files committed beside this script. Prices and
starting stock are invented but plausible, and deterministic so the demo is the same every time.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).parent

#: Aisle letter and base price (SEK) per department.
AISLES = {"Fruit": ("A", 4.90), "Vegetables": ("B", 3.90), "Packages": ("C", 18.90)}

#: Words a shopper would say that the dataset's names lack.
ALIASES = {
    "Melon": ["melon"], "Pepper": ["bell pepper", "paprika"], "Oat-Milk": ["oat drink"],
    "Soyghurt": ["soy yoghurt", "soy yogurt"], "Yoghurt": ["yogurt"], "Oatghurt": ["oat yoghurt"],
    "Aubergine": ["eggplant"], "Zucchini": ["courgette"], "Satsumas": ["mandarin", "satsuma"],
    "Sour-Milk": ["filmjölk"], "Red-Beet": ["beetroot"],
}


def display_name(fine: str, coarse: str) -> str:
    name = fine.replace("-", " ")
    base = coarse.replace("-", " ")
    if base.lower() not in name.lower() and coarse not in ("Satsumas",):
        name = f"{name} {base.lower()}"
    return name


def build(dataset: Path) -> None:
    images = HERE / "images"
    if images.exists():
        shutil.rmtree(images)
    images.mkdir()
    products = []
    aisle_slots: dict[str, int] = {}
    with (dataset / "classes.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            fine, class_id = row["Class Name (str)"], int(row["Class ID (int)"])
            coarse = row["Coarse Class Name (str)"]
            iconic = dataset / row["Iconic Image Path (str)"].lstrip("/")
            department = iconic.relative_to(dataset / "iconic-images-and-descriptions").parts[0]
            letter, base_price = AISLES[department]
            aisle_slots[letter] = aisle_slots.get(letter, 0) + 1
            sku = f"GS-{class_id:03d}"
            description_file = dataset / row["Product Description Path (str)"].lstrip("/")
            description = description_file.read_text(encoding="utf-8").split("\n\n")[0].strip()
            image_name = f"{sku}.jpg"
            shutil.copyfile(iconic, images / image_name)
            jitter = int(hashlib.sha256(sku.encode()).hexdigest()[:4], 16)
            aliases = [coarse.replace("-", " ").lower()] + ALIASES.get(coarse, [])
            name = display_name(fine, coarse)
            products.append({
                "sku": sku,
                "names": {"en": name},
                "aliases": {"en": sorted({a for a in aliases if a.lower() != name.lower()})},
                "category": f"{department} / {coarse.replace('-', ' ')}",
                "description": description,
                "price": f"{base_price + (jitter % 40) / 2:.2f}",
                "shelf": f"{letter}{(aisle_slots[letter] - 1) // 6 + 1}",
                "image": image_name,
                "stock": 5 + jitter % 36,
            })
    (HERE / "catalog.json").write_text(
        json.dumps({"products": products}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    shutil.copyfile(dataset / "LICENSE", images / "LICENSE")
    print(f"wrote {len(products)} products")


if __name__ == "__main__":
    build(Path(sys.argv[1]))
