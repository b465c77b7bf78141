"""Photo product search wired to the store: enrolment of reference photos, their embeddings in
SQLite, the in-memory gallery, and answers with shelf and live stock.

Every path that enrols or searches (the web API, catalogue imports, ``retail-hub vision eval``)
goes through :class:`PhotoService`, so the eval measures the code that answers shoppers.
Inference is CPU work: the async entry points run it on the service's own single worker thread,
which also bounds memory to one decoded photo at a time. A catalogue import is embedded on that
thread too, after the import has committed, never on the database's writer thread: embedding 81
product images takes a second or two, and every other write of the store would wait for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import numpy as np

from hub.catalog import Catalog, ImportReport
from hub.config.vision import VisionConfig
from hub.db import Database, Transaction
from hub.errors import Conflict, HubError, InvalidInput, NotFound, TooLarge, Unavailable
from hub.inventory import Inventory
from hub.periodic import PeriodicJob
from hub.storage import write_whole
from vision.embedder import OnnxEmbedder
from vision.errors import GalleryError, ImageTooLargeError, VisionError
from vision.gallery import Match
from vision.imageinfo import EXTENSIONS, read_info, sniff_format
from vision.pack import PackError, ReferencePack, load_pack
from vision.search import PhotoSearch

if TYPE_CHECKING:
    from hub.services import Services

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Photos embedded per database transaction when many are enrolled at once.
BATCH = 64
#: Shorter side, in pixels, a staff reference photo needs: a thumbnail or a 1x1 picture shows
#: no product, and once enrolled it is answered for whatever resembles its few pixels.
MIN_REFERENCE_SIDE = 64
#: How often the hub looks for product images another process stored, in seconds.
IMAGE_SYNC_S = 60.0


@dataclass(frozen=True)
class Enrolment:
    """A stored reference photo: its image row, whether it was new for the product and, for a
    staff photo, the other product search took it for (see ``PhotoService._looks_like``)."""

    image_id: int
    sku: str
    path: str
    added: bool
    looks_like: dict[str, Any] | None = None


class PreparedPhoto(NamedTuple):
    """A checked and embedded photo, with its digest and its file's place under images/."""

    sku: str
    data: bytes
    digest: str
    path: str
    vector: np.ndarray


def user_error(exc: VisionError) -> HubError:
    """A vision error as the hub error a client gets (413 for oversized images, else 400)."""
    if isinstance(exc, ImageTooLargeError):
        return TooLarge(exc.message, code=exc.code, details=exc.details or None)
    if isinstance(exc, GalleryError):
        return Unavailable(exc.message, code=exc.code)
    return InvalidInput(exc.message, code=exc.code)


#: What a kiosk client is told when the model failed to load; staff read the reason in store
#: health (GET /api/staff/health), the log and doctor.
UNAVAILABLE = (
    "photo search is unavailable: its model could not be loaded (staff: store health and "
    "'retail-hub doctor' say why)"
)


class PhotoService:
    """The store's photo search: loads the model, keeps embeddings in step with product images."""

    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        inventory: Inventory,
        images_dir: Path,
        config: VisionConfig,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.inventory = inventory
        self.images_dir = images_dir
        self.config = config
        self._timer = timer
        self._engine: PhotoSearch | None = None
        self._load_error: str | None = None
        self._pack: ReferencePack | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vision")
        # Training the head takes seconds; on its own thread it never holds up a kiosk search.
        self._gallery_builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gallery")
        self._build_lock = threading.Lock()
        self._next_build: Future[int] | None = None

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def failed(self) -> str | None:
        """Why the model could not be loaded (until the hub restarts), or None."""
        return self._load_error

    @property
    def engine(self) -> PhotoSearch:
        if self._engine is None:
            if self._load_error is not None:  # the reason names server paths: staff only
                raise Unavailable(UNAVAILABLE)
            raise Unavailable("photo search is still starting; try again in a few seconds")
        return self._engine

    def load(self) -> None:
        """Load and warm up the model, embed images that lack a vector for it, build the gallery."""
        try:
            embedder = OnnxEmbedder(
                self.config.model_file, self.config.threads, self.config.max_pixels
            )
        except VisionError as exc:
            raise Unavailable(exc.message, code=exc.code) from exc
        self._engine = PhotoSearch(
            embedder,
            self.config.confidence_threshold,
            self.config.min_similarity,
            self.config.max_distance_ratio,
            timer=self._timer,
        )
        self._pack = self._load_pack()
        self.embed_missing()
        self.refresh()

    def _load_pack(self) -> ReferencePack | None:
        """The configured reference pack, or None when there is none or it cannot be used (the
        store's own photos still answer; the log says why the pack was left out)."""
        path = self.config.reference_pack
        if path is None:
            return None
        try:
            pack = load_pack(path, self.model_sha, self.engine.embedder.dim)
        except PackError as exc:
            log.error("reference pack not used: %s", exc.message)
            return None
        log.info("reference pack %s: %d photo embeddings", path, len(pack.keys))
        known = {row["sku"] for row in self.db.query("SELECT sku FROM products")}
        unknown = len({key for key in pack.keys if key not in known})
        if unknown:
            log.warning(
                "reference pack %s: %d of its %d products are not in the catalogue (by SKU); "
                "their photos are left out",
                path,
                unknown,
                len(set(pack.keys)),
            )
        return pack

    async def start(self) -> None:
        """Load in the background thread; a broken model disables photo search, not the hub."""
        try:
            await self.run(self.load)
        except Unavailable as exc:
            self._load_error = exc.message
            log.error("photo search disabled: %s", exc.message)
            return
        self.catalog.add_listener(self._on_import)

    async def stop(self) -> None:
        """Wait for a search or gallery build under way off the event loop, which keeps
        serving meanwhile."""
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        await asyncio.to_thread(self._gallery_builder.shutdown, wait=True)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking vision work on the service's worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(fn, *args))

    def request_rebuild(self) -> Future[int]:
        """Rebuild the gallery on its own thread from everything stored by now; the future gives
        its photo count. Requests that arrive while a rebuild waits to start share it, so a
        burst of enrolments costs a rebuild or two, not one each."""
        with self._build_lock:
            if self._next_build is None:
                self._next_build = self._gallery_builder.submit(self._build)
            return self._next_build

    def _build(self) -> int:
        with self._build_lock:
            self._next_build = None  # what is stored from now on needs the next rebuild
        return self.refresh()

    async def add_photo(self, sku: str, data: bytes) -> tuple[Enrolment, Future[int] | None]:
        """Enrol one staff reference photo and start the retraining that makes it searchable:
        the future, None when the photo was known already. Kiosk searches go on with the
        previous gallery meanwhile."""
        return await self.run(self._enrol_one, sku, data)

    def _enrol_one(self, sku: str, data: bytes) -> tuple[Enrolment, Future[int] | None]:
        """On the vision thread, storing and asking for the retraining in one step: a request
        cancelled in between had left a stored photo that search never used."""
        self._refuse_if_too_small(data)
        self._refuse_if_another_products(sku, data)
        try:  # once, for the question below and for the store: the Pi's costliest step
            vector = self.engine.embed(data)
        except VisionError as exc:
            raise user_error(exc) from exc
        resembles = self._looks_like(sku, vector)
        (enrolment,) = self._store([self._prepared(sku, data, vector)], "reference", False)
        enrolment = replace(enrolment, looks_like=resembles if enrolment.added else None)
        return enrolment, self.request_rebuild() if enrolment.added else None

    def _looks_like(self, sku: str, vector: np.ndarray) -> dict[str, Any] | None:
        """The other product that search, before this photo, answers for it with confidence.

        Why: a photo added to the wrong product (a banana under oat milk; the staff panel's
        product list is long) was taken silently and taught search a wrong answer. It is not
        refused: a product search knows only from its catalogue image may well be taken for
        another until it has photos of its own, so staff are asked to look."""
        try:
            found = self.engine.rank(vector, top_k=1)
        except GalleryError:  # nothing enrolled yet: nothing to take it for
            return None
        results = self._results(found.matches)
        best = results[0] if results else None
        if not found.confident or best is None or best["sku"] == sku:
            return None
        return {key: best[key] for key in ("sku", "name", "score")}

    @staticmethod
    def _refuse_if_too_small(data: bytes) -> None:
        try:
            info = read_info(data)
        except VisionError as exc:
            raise user_error(exc) from exc
        if min(info.width, info.height) < MIN_REFERENCE_SIDE:
            raise InvalidInput(
                f"the photo is {info.width}x{info.height} pixels, too small to show the product; "
                f"a reference photo needs at least {MIN_REFERENCE_SIDE} pixels on its shorter "
                "side (send the camera's photo, not a thumbnail)",
                code="bad_image",
            )

    def _refuse_if_another_products(self, sku: str, data: bytes) -> None:
        """409 when this very photo is enrolled for another product and not for ``sku``: the
        same picture under two products teaches search both answers for it, and it is nearly
        always a photo added to the wrong product (the staff panel's product list is long)."""
        self.catalog.get(sku)  # an unknown product is a 404 first
        rows = self.db.query(  # a catalogue image first: staff cannot remove that one
            "SELECT id, sku, kind FROM product_images WHERE sha256 = ? "
            "ORDER BY kind = 'iconic' DESC, id",
            (hashlib.sha256(data).hexdigest(),),
        )
        if not rows or any(row["sku"] == sku for row in rows):
            return  # new, or this product's already (answered 200, nothing changes)
        row = rows[0]
        other = self.catalog.get(row["sku"])
        name = f"{other.names.get('en') or next(iter(other.names.values()))} ({other.sku})"
        if row["kind"] == "iconic":
            why = (f"this picture is the catalogue image of {name}; a reference photo of {sku} "
                   f"must show {sku} itself")
        else:
            why = (f"this photo is already a reference photo of {name}; if it shows {sku}, "
                   f"remove it from {other.sku} first")
        raise Conflict(why, details={"sku": other.sku, "image_id": row["id"]},
                       code="photo_of_another_product")

    async def sync_new_images(self) -> None:
        """Embed product images stored since the last look (a ``retail-hub catalog import`` run
        while the hub is up writes them from another process) and rebuild when there were any."""
        if self._engine is not None and await self.run(self.embed_missing):
            await asyncio.wrap_future(self.request_rebuild())

    def _on_import(self, report: ImportReport) -> None:
        """Called on the thread that committed the import (the database writer): queue the
        embedding on the vision thread and return at once."""
        if report.images and self._engine is not None:
            try:
                self._executor.submit(self._sync_images)
            except RuntimeError:  # stopping: the next start embeds what is missing
                log.info("photo service stopped; new product images are embedded at next start")

    def _sync_images(self) -> None:
        """Embed new product images, then rebuild the gallery; a failure is logged, since no
        caller waits for this job."""
        try:
            self.embed_missing()
            self.request_rebuild()
        except Exception:
            log.exception("product images could not be embedded after a catalogue import")

    # --- embeddings -----------------------------------------------------------------------

    @property
    def model_sha(self) -> str:
        return self.engine.embedder.sha256

    def embed_missing(self) -> int:
        """Embed every product image without a vector for the current model; returns how many.

        An image file that is gone or unreadable is logged and skipped, not fatal: one bad file
        must not keep the kiosk from searching the rest.
        """
        rows = self.db.query(
            "SELECT i.id, i.path FROM product_images i WHERE NOT EXISTS (SELECT 1 FROM "
            "product_embeddings e WHERE e.image_id = i.id AND e.model_sha = ?) ORDER BY i.id",
            (self.model_sha,),
        )
        done = 0
        for first in range(0, len(rows), BATCH):
            vectors = []
            for row in rows[first : first + BATCH]:
                try:
                    data = (self.images_dir / row["path"]).read_bytes()
                    vectors.append((row["id"], self.engine.embed(data)))
                except (OSError, VisionError) as exc:
                    log.warning("product image %s cannot be embedded: %s", row["path"], exc)
            with self.db.transaction() as tx:
                for image_id, vector in vectors:
                    self._store_vector(tx, image_id, vector)
            done += len(vectors)
        return done

    def _store_vector(self, tx: Transaction, image_id: int, vector: np.ndarray) -> None:
        tx.execute(
            "INSERT OR REPLACE INTO product_embeddings (image_id, model_sha, dim, vector) "
            "VALUES (?, ?, ?, ?)",
            (image_id, self.model_sha, int(vector.shape[0]), vector.astype("<f4").tobytes()),
        )

    def stored_vectors(self, kind: str | None = None) -> tuple[list[str], np.ndarray]:
        """SKUs and vectors of the product images embedded with the current model, optionally
        only those of one kind ('iconic' or 'reference'), in enrolment order."""
        rows = self.db.query(
            "SELECT i.sku, e.vector FROM product_embeddings e JOIN product_images i "
            "ON i.id = e.image_id WHERE e.model_sha = ? AND (? IS NULL OR i.kind = ?) "
            "ORDER BY e.image_id",
            (self.model_sha, kind, kind),
        )
        vectors = np.zeros((len(rows), self.engine.embedder.dim), dtype=np.float32)
        for i, row in enumerate(rows):
            vectors[i] = np.frombuffer(row["vector"], dtype="<f4")
        return [row["sku"] for row in rows], vectors

    def refresh(self) -> int:
        """Rebuild the gallery and its head from the stored vectors and the reference pack's
        vectors of products still in the catalogue; returns the photo count."""
        keys, vectors = self.stored_vectors()
        if self._pack is not None:
            known = {row["sku"] for row in self.db.query("SELECT sku FROM products")}
            kept = [i for i, key in enumerate(self._pack.keys) if key in known]
            keys += [self._pack.keys[i] for i in kept]
            vectors = np.concatenate([vectors, self._pack.vectors[kept]])
        if not keys:
            log.warning("photo search has no enrolled photos yet")
            return 0
        self.engine.rebuild(keys, vectors)
        return len(keys)

    # --- enrolment ------------------------------------------------------------------------

    def enrol_many(
        self, photos: Iterable[tuple[str, bytes]], kind: str = "reference", rebuild: bool = True
    ) -> list[Enrolment]:
        """Store reference photos of products and their embeddings; all or nothing.

        Every photo is checked and embedded before anything is written, so one bad photo in a
        batch leaves the store as it was and the error names it.
        """
        prepared = []
        for number, (sku, data) in enumerate(photos, start=1):
            self.catalog.get(sku)
            try:
                vector = self.engine.embed(data)
            except VisionError as exc:
                error = user_error(exc)
                error.message = f"photo {number} for {sku}: {error.message}"
                error.details = {**(error.details or {}), "photo": number, "sku": sku}
                raise error from exc
            prepared.append(self._prepared(sku, data, vector))
        return self._store(prepared, kind, rebuild)

    @staticmethod
    def _prepared(sku: str, data: bytes, vector: np.ndarray) -> PreparedPhoto:
        digest = hashlib.sha256(data).hexdigest()
        path = f"{sku}/{digest[:16]}{EXTENSIONS[sniff_format(data)]}"
        return PreparedPhoto(sku, data, digest, path, vector)

    def _store(
        self, prepared: list[PreparedPhoto], kind: str, rebuild: bool
    ) -> list[Enrolment]:
        """Write prepared photos and their vectors in one transaction (a photo the product has
        already is answered as not added)."""
        for _, data, _, rel, _ in prepared:
            target = self.images_dir / rel
            if not target.exists():
                write_whole(target, data)
        enrolled = []
        with self.db.transaction() as tx:
            for sku, _, digest, rel, vector in prepared:
                row = tx.execute(
                    "SELECT id FROM product_images WHERE sku = ? AND sha256 = ?", (sku, digest)
                ).fetchone()
                added = row is None
                if added:
                    row = tx.execute(
                        "INSERT INTO product_images (sku, path, kind, sha256, added_at) "
                        "VALUES (?, ?, ?, ?, ?) RETURNING id",
                        (sku, rel, kind, digest, self.catalog.clock.now()),
                    ).fetchone()
                self._store_vector(tx, int(row[0]), vector)
                enrolled.append(Enrolment(int(row[0]), sku, rel, added))
        if rebuild:
            self.refresh()
        return enrolled

    async def remove_photo(self, sku: str, image_id: int) -> int:
        """Remove one enrolled reference photo (a photo of the wrong product, a blurred one)
        and wait until the gallery searches without it; returns the photos the product has
        left. The catalogue image is the catalogue's: it changes with the next import."""
        await self.run(self._delete_photo, sku, image_id)
        await asyncio.wrap_future(self.request_rebuild())
        return await self.run(self.photo_count, sku)

    def _delete_photo(self, sku: str, image_id: int) -> None:
        self.catalog.get(sku)
        with self.db.transaction() as tx:
            row = tx.execute(
                "SELECT kind, path FROM product_images WHERE id = ? AND sku = ?", (image_id, sku)
            ).fetchone()
            if row is None:
                raise NotFound(
                    f"product {sku} has no photo {image_id}; GET /api/products/{sku}/photos "
                    "lists its photos"
                )
            if row[0] == "iconic":
                raise Conflict(
                    f"photo {image_id} is the catalogue image of {sku}; change it in the "
                    "catalogue and import it again",
                    code="catalogue_image",
                )
            tx.execute("DELETE FROM product_images WHERE id = ?", (image_id,))  # and its vectors
        (self.images_dir / row[1]).unlink(missing_ok=True)

    def photo_count(self, sku: str) -> int:
        row = self.db.query_one("SELECT count(*) AS n FROM product_images WHERE sku = ?", (sku,))
        return int(row["n"]) if row else 0

    # --- search ---------------------------------------------------------------------------

    def search(self, data: bytes, top_k: int | None = None) -> dict[str, Any]:
        """Photo bytes -> ``{"results", "confident", "ms", "model"}``, each result with the
        product's name, shelf and available stock. ``ms`` covers decoding to the finished list."""
        started = self._timer()
        try:
            found = self.engine.search(data, top_k or self.config.top_k)
        except VisionError as exc:
            raise user_error(exc) from exc
        return {
            "results": self._results(found.matches),
            "confident": found.confident,
            "ms": round((self._timer() - started) * 1000.0, 2),
            "model": found.model,
        }

    def _results(self, matches: Iterable[Match]) -> list[dict[str, Any]]:
        """Ranked matches as the API answers them, with name, shelf and live stock."""
        results = []
        for match in matches:
            try:
                product = self.catalog.get(match.key)
                available = self.inventory.stock(match.key).available
            except NotFound:  # deleted since the gallery was built
                continue
            results.append(
                {
                    "sku": product.sku,
                    "name": product.names.get("en") or next(iter(product.names.values())),
                    "score": round(match.score, 4),
                    "shelf": product.shelf,
                    "available": available,
                }
            )
        return results

    def ranked_skus(self, data: bytes, top_k: int) -> tuple[list[str], float]:
        """The SKUs of :meth:`search`'s answer and its time, for the eval and the bench."""
        answer = self.search(data, top_k)
        return [r["sku"] for r in answer["results"]], float(answer["ms"])


def setup(services: Services) -> None:
    """Attach photo search to the hub when enabled; the model loads when the hub starts."""
    config = services.config.vision
    if not config.enabled:
        return
    service = PhotoService(
        services.db, services.catalog, services.inventory, services.config.store.images_dir, config
    )
    services.photo_search = service
    services.lifecycle.append(service)
    services.lifecycle.append(
        PeriodicJob("photo-images", IMAGE_SYNC_S, services.clock, service.sync_new_images)
    )
