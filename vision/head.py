"""The on-device classifier: a shrinkage discriminant on the enrolled photos' embeddings, in numpy.

Why this rather than a plain mean embedding per product or a trained softmax layer: products in a
shop differ in a few directions of the embedding (the label's colour, the carton's print) while
photos of one product vary in others (light, angle, background). Whitening the embeddings with
the covariance of the photos around their own product's mean shrinks the directions that vary
within products and stretches those that separate them; products are then compared by cosine to
their whitened mean (linear discriminant analysis with cosine scores). The covariance of 1280-d
vectors from a few thousand photos is noisy, so it is shrunk towards a multiple of the identity by
the Ledoit-Wolf formula, which needs no tuning: with few photos per product it approaches the
plain centred cosine. It is closed form (one covariance, one Cholesky factor), so it is rebuilt
whenever staff add a photo, in about a second for the demo's 2,700 photos.

On the shipped model and the Grocery Store val split it gives top-1 0.875 where the softmax layer
trained by gradient descent on the same vectors gave 0.858 and plain mean embeddings 0.841.

Scores are softmax probabilities of the scaled cosines; the scale (an inverse temperature) is
fitted on photos held out from a first fit, so a score of 0.8 means right about 8 times in 10 on
photos like the enrolled ones. The fit has a prior (log-normal around 1, see
:func:`fit_temperature`): a small store's few held-out photos are all answered right, and without
it the temperature ran to the bottom of its range, so every answer, a photo of the floor too,
scored 1.0.

The same whitened space says whether a photo shows any enrolled product at all: the squared
distance to the nearest product mean, per dimension, is a Mahalanobis distance under the shrunk
within-product covariance. A blank wall, a sheet of text or a screenshot lies in directions that
enrolled photos never vary in, so it lands far from every product even when its cosine to one
of them is high. The distance is reported relative to the median of the held-out photos'
distances (``distance_scale``), so the "not sure" gate means the same in any store's gallery; a
median needs only a handful of held-out photos (a 99th percentile needed about 250 enrolled
photos, so a small store had no gate but the cosine, which a sheet of text passes).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

#: Cosines are multiplied by this before the temperature is fitted, so that the fitted
#: temperature lies well inside the grid of :func:`fit_temperature`.
COSINE_LOGIT_SCALE = 20.0


@dataclass(frozen=True)
class DiscriminantHead:
    """Scaled cosines between a whitened embedding and each product's whitened mean, softmaxed.

    ``centre`` (D,) is the mean of the product means, ``whiten`` (D, D) maps a centred embedding
    into the whitened space, ``means`` (K, D) are the whitened product means and ``prototypes``
    (K, D) the same scaled to unit length. ``distance_scale`` is None when too few photos could be
    held out to measure it (see :class:`HeadSettings`).
    """

    centre: np.ndarray
    whiten: np.ndarray
    means: np.ndarray
    prototypes: np.ndarray
    shrinkage: float
    temperature: float = 1.0
    distance_scale: float | None = None

    def whitened(self, x: np.ndarray) -> np.ndarray:
        """(N, D) embeddings -> (N, D) centred, whitened embeddings."""
        # einsum, not @: numpy's BLAS splits a (1, D) x (D, D) product over threads, which on a
        # busy two-core kiosk costs 15 ms of waiting instead of 0.2 ms of arithmetic
        return np.einsum("nd,de->ne", np.asarray(x, dtype=np.float32) - self.centre, self.whiten)

    def cosines(self, x: np.ndarray) -> np.ndarray:
        """(N, D) embeddings -> (N, K) cosines to the products in the whitened space."""
        return self._cosines(self.whitened(x))

    def distances(self, x: np.ndarray) -> np.ndarray:
        """(N, D) embeddings -> (N,) squared whitened distance to the nearest product mean, per
        dimension (about 1 for a photo like the enrolled ones, more the stranger it is)."""
        return self._distances(self.whitened(x))

    def assess(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, D) embeddings -> (N, K) probabilities and (N,) distance ratios (None without a
        ``distance_scale``), whitening once: a search needs both, and the whitening is most of
        the arithmetic of either."""
        z = self.whitened(x)
        probabilities = softmax(self._logits(z))
        if self.distance_scale is None:
            return probabilities, None
        return probabilities, self._distances(z) / self.distance_scale

    def _logits(self, z: np.ndarray) -> np.ndarray:
        return self._cosines(z) * (COSINE_LOGIT_SCALE / self.temperature)

    def _cosines(self, z: np.ndarray) -> np.ndarray:
        unit = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return unit @ self.prototypes.T

    def _distances(self, z: np.ndarray) -> np.ndarray:
        squared = (
            np.sum(z * z, axis=1)[:, None]
            - 2.0 * (z @ self.means.T)
            + np.sum(self.means * self.means, axis=1)[None, :]
        )
        return np.maximum(squared.min(axis=1), 0.0) / z.shape[1]

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self._logits(self.whitened(x))

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """(N, D) unit embeddings -> (N, K) probabilities."""
        return softmax(self.logits(x))


@dataclass(frozen=True)
class HeadSettings:
    """How the head is calibrated: the share of each product's photos held out, the seed that
    picks them, the quantile of the held-out photos' distances that becomes ``distance_scale``
    (the median: steady from a handful of photos), how many held-out photos that needs, and the
    spread of the temperature's prior (standard deviation of log T around log 1)."""

    holdout: float = 0.2
    seed: int = 0
    distance_quantile: float = 0.5
    min_held_for_scale: int = 5
    temperature_prior_sigma: float = 0.5


#: The settings used when none are given.
DEFAULT_HEAD = HeadSettings()


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def ledoit_wolf(centred: np.ndarray) -> tuple[np.ndarray, float]:
    """The covariance of rows already centred on their product's mean, and the Ledoit-Wolf
    shrinkage intensity in [0, 1] towards ``trace / D`` times the identity."""
    n, dim = centred.shape
    cov = (centred.T @ centred).astype(np.float64) / n
    mu = float(np.trace(cov)) / dim
    frobenius = float(np.sum(cov * cov))
    delta = frobenius - dim * mu * mu
    if delta <= 0.0:
        return cov, 1.0
    norms = np.einsum("ij,ij->i", centred, centred, dtype=np.float64)
    beta = (float(np.sum(norms * norms)) - n * frobenius) / (n * n)
    return cov, float(np.clip(beta / delta, 0.0, 1.0))


def fit(x: np.ndarray, y: np.ndarray, classes: int) -> DiscriminantHead:
    """The whitening and whitened product means for photos ``x`` (N, D) with labels ``y``;
    temperature 1. Every class in ``range(classes)`` needs at least one photo."""
    x = np.asarray(x, dtype=np.float32)
    counts = np.bincount(y, minlength=classes)
    if np.any(counts == 0):
        raise ValueError("every product needs at least one photo")
    sums = np.zeros((classes, x.shape[1]), dtype=np.float64)
    np.add.at(sums, y, x)
    means = (sums / counts[:, None]).astype(np.float32)
    cov, shrinkage = ledoit_wolf(x - means[y])
    dim = x.shape[1]
    scale = float(np.trace(cov)) / dim
    if scale <= 1e-12:  # one photo per product: nothing varies within a product
        whiten = np.eye(dim, dtype=np.float32)
        shrinkage = 1.0
    else:
        shrinkage = max(shrinkage, 1e-3)  # keeps the matrix well conditioned
        shrunk = (1.0 - shrinkage) * cov + shrinkage * scale * np.eye(dim)
        # any square root of the inverse gives the same cosines; the Cholesky factor is cheapest
        whiten = np.linalg.inv(np.linalg.cholesky(shrunk)).T.astype(np.float32)
    centre = means.mean(axis=0)
    whitened = ((means - centre) @ whiten).astype(np.float32)
    prototypes = whitened / np.maximum(np.linalg.norm(whitened, axis=1, keepdims=True), 1e-12)
    return DiscriminantHead(centre, whiten, whitened, prototypes, shrinkage)


def fit_temperature(logits: np.ndarray, y: np.ndarray, prior_sigma: float | None = None) -> float:
    """The temperature minimising the negative log-likelihood of held-out labels (grid in log T),
    plus, with ``prior_sigma``, a log-normal prior around T = 1 (``COSINE_LOGIT_SCALE`` is chosen
    so: on the val split of the Grocery Store dataset the best temperature was 0.45-1.3 in
    galleries of 5 to 81 products). Held-out photos all answered right, as in a small store,
    make the likelihood alone favour ever smaller temperatures; the prior holds it until
    enough photos say otherwise."""
    best, best_cost = 1.0, np.inf
    for temperature in np.exp(np.linspace(np.log(0.05), np.log(20.0), 121)):
        probs = softmax(logits / temperature)
        cost = -np.sum(np.log(probs[np.arange(len(y)), y] + 1e-12))
        if prior_sigma is not None:
            cost += np.log(temperature) ** 2 / (2.0 * prior_sigma**2)
        if cost < best_cost:
            best, best_cost = float(temperature), cost
    return best


def train_calibrated(
    x: np.ndarray, y: np.ndarray, classes: int, settings: HeadSettings = DEFAULT_HEAD
) -> DiscriminantHead:
    """Fit on all photos, with the temperature and the distance scale measured on a stratified
    hold-out of a first fit.

    Products with a single photo stay in the fitting part of the split: they cannot be held out.
    """
    rng = np.random.default_rng(settings.seed)
    held = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if len(members) > 1:
            count = max(1, int(round(len(members) * settings.holdout)))
            held[rng.choice(members, size=count, replace=False)] = True
    temperature, scale = 1.0, None
    if held.any() and (~held).any():
        first = fit(x[~held], y[~held], classes)
        temperature = fit_temperature(
            first.logits(x[held]), y[held], settings.temperature_prior_sigma
        )
        # a first fit with one photo per product has nothing to whiten with: its distances are
        # in other units than the final fit's
        varies = np.bincount(y[~held], minlength=classes).max() > 1
        if varies and held.sum() >= settings.min_held_for_scale:
            scale = float(np.quantile(first.distances(x[held]), settings.distance_quantile))
    final = fit(x, y, classes)
    return replace(
        final, temperature=temperature, distance_scale=scale if scale and scale > 0 else None
    )
