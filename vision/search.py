"""Photo search: bytes -> embedding -> ranked products, with a confidence and an honest "not sure".

The web API, the eval command and the bench all call :meth:`PhotoSearch.search`, so the figures
they report are the figures of the code that answers shoppers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vision.embedder import OnnxEmbedder
from vision.errors import GalleryError
from vision.gallery import Gallery, Match
from vision.head import DEFAULT_HEAD, HeadSettings


@dataclass(frozen=True)
class SearchResult:
    """Ranked products; ``confident`` is False ("not sure") when the best score is below the
    threshold or the photo is not close enough to any enrolled product (``similarity`` below the
    minimum, or ``distance_ratio`` above the maximum where the gallery measures it)."""

    matches: list[Match]
    confident: bool
    similarity: float
    distance_ratio: float | None
    ms: float
    model: str


class PhotoSearch:
    """The embedder and the current gallery; the gallery is swapped whole when it is rebuilt."""

    def __init__(
        self,
        embedder: OnnxEmbedder,
        threshold: float = 0.5,
        min_similarity: float = 0.4,
        max_distance_ratio: float = 5.0,
        head_settings: HeadSettings = DEFAULT_HEAD,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"the confidence threshold must lie in [0, 1], not {threshold}")
        self.embedder = embedder
        self.threshold = threshold
        self.min_similarity = min_similarity
        self.max_distance_ratio = max_distance_ratio
        self.head_settings = head_settings
        self._timer = timer
        self._gallery: Gallery | None = None
        self._lock = threading.Lock()

    @property
    def gallery(self) -> Gallery | None:
        return self._gallery

    def embed(self, data: bytes) -> np.ndarray:
        """Photo bytes -> unit embedding, exactly as a search sees them (for enrolment)."""
        return self.embedder.embed(data)

    def rebuild(self, keys: Sequence[str], vectors: np.ndarray) -> Gallery:
        """Train a new gallery from every enrolled (key, vector) and make it current."""
        gallery = Gallery.build(keys, vectors, self.head_settings)
        with self._lock:
            self._gallery = gallery
        return gallery

    def search(self, data: bytes, top_k: int = 5) -> SearchResult:
        """Rank products for one photo; raises ImageError for unusable bytes."""
        gallery = self._gallery
        if gallery is None:
            raise GalleryError("no reference photos are enrolled; add a photo to a product first")
        started = self._timer()
        return self._rank(gallery, self.embedder.embed(data), top_k, started)

    def rank(self, vector: np.ndarray, top_k: int = 5) -> SearchResult:
        """Rank products for a photo already embedded (a staff photo is embedded once, both to
        ask what search takes it for and to enrol it); ``ms`` covers the ranking alone."""
        gallery = self._gallery
        if gallery is None:
            raise GalleryError("no reference photos are enrolled; add a photo to a product first")
        return self._rank(gallery, vector, top_k, self._timer())

    def _rank(
        self, gallery: Gallery, vector: np.ndarray, top_k: int, started: float
    ) -> SearchResult:
        matches, ratio = gallery.rank(vector, top_k)
        similarity = gallery.similarity(vector)
        ms = (self._timer() - started) * 1000.0
        confident = (
            bool(matches)
            and matches[0].score >= self.threshold
            and similarity >= self.min_similarity
            and (ratio is None or ratio <= self.max_distance_ratio)
        )
        return SearchResult(matches, confident, similarity, ratio, ms, self.embedder.name)
