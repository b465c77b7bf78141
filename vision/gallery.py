"""The searchable gallery: every enrolled photo's embedding, grouped by product.

A search scores products with the on-device head (``head.py``: calibrated probabilities from a
shrinkage discriminant). Plain per-product mean embeddings (prototypes) are kept too: they rank
products when fewer than two are enrolled, where a classifier has nothing to separate. Two gates
ask "does this show any of our products": the head's whitened distance to the nearest product,
relative to held-out enrolled photos (the sharper test, once enough photos are enrolled to hold
some out), and the prototypes' cosine, which works even for one photo per product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vision.errors import GalleryError
from vision.head import DEFAULT_HEAD, DiscriminantHead, HeadSettings, train_calibrated


@dataclass(frozen=True)
class Match:
    """A product key (the store's SKU) and its score in [0, 1]."""

    key: str
    score: float


class Gallery:
    """Embeddings per product, their prototypes and the head trained on them. Immutable once built,
    so a search in one thread never sees a half-rebuilt gallery while another rebuilds."""

    def __init__(
        self, keys: list[str], prototypes: np.ndarray, head: DiscriminantHead | None, photos: int
    ) -> None:
        self.keys = keys
        self.prototypes = prototypes
        self.head = head
        self.photos = photos

    @classmethod
    def build(
        cls, keys: Sequence[str], vectors: np.ndarray, settings: HeadSettings = DEFAULT_HEAD
    ) -> Gallery:
        """Build from one (key, unit vector) pair per enrolled photo; trains the head."""
        if len(keys) != len(vectors):
            raise ValueError(f"{len(keys)} keys for {len(vectors)} vectors")
        if len(keys) == 0:
            raise GalleryError("no reference photos are enrolled; add a photo to a product first")
        products = sorted(set(keys))
        index = {key: i for i, key in enumerate(products)}
        labels = np.array([index[key] for key in keys], dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32)
        sums = np.zeros((len(products), vectors.shape[1]), dtype=np.float32)
        np.add.at(sums, labels, vectors)
        prototypes = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        head = (
            train_calibrated(vectors, labels, len(products), settings)
            if len(products) > 1
            else None
        )
        return cls(products, prototypes, head, len(keys))

    @property
    def dim(self) -> int:
        return int(self.prototypes.shape[1])

    def similarity(self, vector: np.ndarray) -> float:
        """Cosine between a unit embedding and the nearest product prototype.

        Why: the head always picks one of the products it knows, even for a photo of the
        floor; a low similarity to every product is the signal that the photo shows none of them.
        """
        return float(np.max(self.prototypes @ vector))

    def rank(self, vector: np.ndarray, top_k: int) -> tuple[list[Match], float | None]:
        """The ``top_k`` products for one unit embedding, best first, and the head's distance
        from it to the nearest product relative to the distances of held-out enrolled photos
        (1.0 is the median of theirs); the distance is None when the gallery cannot
        measure it (no head, or too few photos to hold enough out)."""
        if vector.shape != (self.dim,):
            raise GalleryError(
                f"the embedding has shape {vector.shape} but the gallery holds {self.dim}-d "
                "vectors; re-enrol the photos with the current model"
            )
        ratio: float | None = None
        if self.head is not None:
            probabilities, ratios = self.head.assess(vector[None])
            scores = probabilities[0]
            ratio = None if ratios is None else float(ratios[0])
        else:
            scores = np.clip(self.prototypes @ vector, 0.0, 1.0)
        order = np.argsort(-scores)[:top_k]
        return [Match(self.keys[i], float(scores[i])) for i in order], ratio
