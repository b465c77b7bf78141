"""Fine-tunes the EfficientNet-Lite embedding on a store's enrolled product photos.

Why: ImageNet features used frozen stop at about 0.80 top-1 on shop photos of look-alike products
(apple varieties, juice cartons); adapting the upper blocks to the catalogue is what closes the gap.
The recipe is deliberately CPU-sized (a full fine-tune runs at about one epoch per quarter hour on
two shared cores): the stem and the first ``frozen_blocks`` blocks stay frozen, and their outputs
are computed once for several augmented views of every photo (random resized crops, flips, colour
jitter, in plain OpenCV/numpy). Each epoch then trains the remaining blocks, the head convolution
and a cosine classifier on one cached view per photo, with label smoothing and a cosine
learning-rate schedule. With a few thousand photos the upper blocks memorise their views within a
few epochs, so two regularisers work on the cached maps themselves: CutMix (a box of one photo's
feature map pasted into another's, labels mixed by area) and an exponential moving average of the
weights, which is what gets exported.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from vision.preprocess import Preprocessor, normalise
from vision.tools import require_torch


@dataclass(frozen=True)
class BackboneDepth:
    """How deep an EfficientNet-Lite variant is, in MBConv blocks, and how many to freeze.

    ``frozen`` is the number of blocks before the first stage at stride 32 (192 channels in Lite0
    and Lite1, 208 in Lite2). Why that boundary: it is where Lite0's recipe (11 of 16 blocks frozen)
    stops freezing, and freezing through the same stage on a deeper variant trains the same top two
    stages. Kept here, without torch, so the command line can offer the choice.
    """

    blocks: int
    frozen: int


BACKBONES = {
    "lite0": BackboneDepth(16, 11),
    "lite1": BackboneDepth(21, 15),
    "lite2": BackboneDepth(21, 15),
}
DEFAULT_BACKBONE = "lite0"


@dataclass(frozen=True)
class FinetuneSettings:
    """The training recipe; every figure here is written into the model's provenance.

    ``cutmix`` is the share of batches mixed with CutMix (box area drawn uniformly); ``ema_decay``
    is the per-step decay of the averaged weights that are exported (0 exports the last weights).

    ``export_size`` is the input size of the exported model, 8/7 of the training size. Why larger:
    training sees random crops of a quarter to all of a photo, each blown up to ``size``, so
    products appear larger than in the centre crop a search uses; a larger search input brings
    them back to the size the network learnt ("FixRes", Touvron et al., 2019). Same weights, no
    retraining; on the val split the int8 model went from top-1 0.875 at 224 to 0.885 at 256
    (top-5 0.986 -> 0.990) for 1.3 times the arithmetic.

    ``backbone`` names the EfficientNet-Lite variant (a key of ``BACKBONES``); ``frozen_blocks``
    counts its blocks, so a deeper variant needs its own count to freeze through the same stage.
    """

    backbone: str = DEFAULT_BACKBONE
    size: int = 224
    export_size: int = 256
    epochs: int = 9
    views: int = 4
    batch_size: int = 32
    frozen_blocks: int = 11
    cutmix: float = 0.5
    ema_decay: float = 0.995
    backbone_lr: float = 1e-3
    classifier_lr: float = 1e-2
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    cosine_scale: float = 16.0
    min_crop_area: float = 0.25
    cache_short_side: int = 320
    threads: int = 1
    seed: int = 0


@dataclass(frozen=True)
class TrainingPhoto:
    """One enrolled photo: its bytes and the index of its product in the label list."""

    data: bytes
    label: int


Log = Callable[[str], None]


class Augmenter:
    """Random views of cached RGB images: resized crop, horizontal flip, colour jitter."""

    def __init__(self, settings: FinetuneSettings, rng: np.random.Generator) -> None:
        self.settings = settings
        self.rng = rng

    def crop(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        area = height * width
        for _ in range(10):
            target = area * self.rng.uniform(self.settings.min_crop_area, 1.0)
            ratio = math.exp(self.rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            w = round(math.sqrt(target * ratio))
            h = round(math.sqrt(target / ratio))
            if 0 < w <= width and 0 < h <= height:
                top = int(self.rng.integers(0, height - h + 1))
                left = int(self.rng.integers(0, width - w + 1))
                image = image[top : top + h, left : left + w]
                break
        size = self.settings.size
        interpolation = cv2.INTER_AREA if min(image.shape[:2]) > size else cv2.INTER_LINEAR
        return cv2.resize(image, (size, size), interpolation=interpolation)

    def jitter(self, image: np.ndarray) -> np.ndarray:
        """Brightness, contrast and saturation each scaled by a factor in [0.7, 1.3]; no hue shift,
        because hue is what tells a Pink Lady from a Golden Delicious."""
        out = image.astype(np.float32)
        out *= self.rng.uniform(0.7, 1.3)
        mean = out.mean()
        out = (out - mean) * self.rng.uniform(0.7, 1.3) + mean
        grey = out.mean(axis=2, keepdims=True)
        out = (out - grey) * self.rng.uniform(0.7, 1.3) + grey
        return np.clip(out, 0, 255).astype(np.uint8)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        view = self.crop(image)
        if self.rng.random() < 0.5:
            view = view[:, ::-1]
        return normalise(self.jitter(view))


def decode_all(photos: Sequence[TrainingPhoto], settings: FinetuneSettings) -> list[np.ndarray]:
    """Decode every photo once, through the product's own decoder, to a modest size in memory."""
    decoder = Preprocessor(size=settings.size)
    return [decoder.resize_short(decoder.decode(p.data), settings.cache_short_side) for p in photos]


def finetune(
    photos: Sequence[TrainingPhoto],
    classes: int,
    settings: FinetuneSettings,
    log: Log = print,
    monitor: Sequence[TrainingPhoto] = (),
    checkpoint: Path | None = None,
) -> dict[str, object]:
    """Train the embedding on ``photos`` and return ``{"state_dict", "settings", "history"}``.

    ``monitor`` photos are classified (with the averaged weights) after every few epochs so a run
    can be watched; they never influence the weights. With ``checkpoint``, the result so far is
    saved after every epoch, so a run cut short on a busy machine still leaves usable weights.
    """
    require_torch(settings.backbone)
    import torch
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    from vision.tools.network import EMBEDDING_DIM, CosineClassifier, Embedder, load_imagenet

    if not photos:
        raise ValueError("no photos to train on; enrol reference photos first")
    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    rng = np.random.default_rng(settings.seed)
    started = time.monotonic()
    images = decode_all(photos, settings)
    labels = np.array([p.label for p in photos], dtype=np.int64)
    log(f"decoded {len(images)} photos in {time.monotonic() - started:.1f} s")

    embedder = Embedder(load_imagenet(settings.size, settings.backbone), settings.frozen_blocks)
    embedder = embedder.to(memory_format=torch.channels_last)
    views = cache_views(embedder, images, Augmenter(settings, rng), settings, log)
    classifier = CosineClassifier(EMBEDDING_DIM, classes, settings.cosine_scale)
    model = torch.nn.ModuleDict({"embedder": embedder, "classifier": classifier})
    averaged = AveragedModel(
        model, multi_avg_fn=get_ema_multi_avg_fn(settings.ema_decay), use_buffers=True
    )
    optimiser = torch.optim.AdamW(
        [
            {
                "params": [p for p in embedder.parameters() if p.requires_grad],
                "lr": settings.backbone_lr,
            },
            {"params": classifier.parameters(), "lr": settings.classifier_lr},
        ],
        weight_decay=settings.weight_decay,
    )
    steps_per_epoch = math.ceil(len(images) / settings.batch_size)
    total = steps_per_epoch * settings.epochs
    warmup = steps_per_epoch // 2
    base = [group["lr"] for group in optimiser.param_groups]
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
    dropout = torch.nn.Dropout(0.2)
    history: list[dict[str, float]] = []
    step = 0
    for epoch in range(settings.epochs):
        embedder.train()
        dropout.train()
        order = rng.permutation(len(images))
        seen = correct = 0
        loss_sum = 0.0
        epoch_start = time.monotonic()
        for first in range(0, len(order), settings.batch_size):
            batch = order[first : first + settings.batch_size]
            if len(batch) < 2:  # batch norm needs two samples
                continue
            factor = (
                (step + 1) / warmup
                if step < warmup
                else 0.5 * (1 + math.cos(math.pi * step / total))
            )
            for group, lr in zip(optimiser.param_groups, base, strict=True):
                group["lr"] = lr * factor
            chosen = rng.integers(0, settings.views, size=len(batch))
            x = views[chosen, batch].astype(np.float32)
            y = torch.from_numpy(labels[batch])
            partner, share = np.arange(len(batch)), 1.0
            if rng.random() < settings.cutmix:
                partner, share = cutmix(x, rng)
            features = embedder.top(torch.from_numpy(x).to(memory_format=torch.channels_last))
            logits = classifier(dropout(features))
            loss = share * loss_fn(logits, y)
            if share < 1.0:
                loss = loss + (1.0 - share) * loss_fn(logits, y[partner])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            averaged.update_parameters(model)
            step += 1
            seen += len(batch)
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += float(loss.detach()) * len(batch)
        record = {
            "epoch": epoch + 1,
            "loss": loss_sum / max(seen, 1),
            "train_acc": correct / max(seen, 1),
            "seconds": time.monotonic() - epoch_start,
        }
        final = averaged.module if settings.ema_decay > 0 else model
        if monitor and ((epoch + 1) % 3 == 0 or epoch + 1 == settings.epochs):
            record["monitor_acc"] = _accuracy(
                final["embedder"], final["classifier"], monitor, settings
            )
        history.append(record)
        log(
            " ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()
            )
        )
        result = {
            "state_dict": final["embedder"].state_dict(),
            "classifier": final["classifier"].state_dict(),
            "settings": asdict(settings),
            "history": history,
        }
        if checkpoint is not None:
            save_checkpoint(result, checkpoint)
    return result


def cutmix(maps: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """CutMix in place on a batch of cached feature maps (N, C, H, W).

    A box covering a uniformly drawn share of the map is copied from a shuffled partner of each
    sample; returns the partners' indices and the share of each sample that is still its own
    (for mixing the two labels' losses). Why on the cached maps rather than the images: the frozen
    trunk's outputs are computed once, and CutMix on intermediate maps regularises the same way.
    """
    height, width = maps.shape[2:]
    keep = rng.uniform(0.0, 1.0)
    box_h = round(height * math.sqrt(1.0 - keep))
    box_w = round(width * math.sqrt(1.0 - keep))
    top = int(rng.integers(0, height - box_h + 1))
    left = int(rng.integers(0, width - box_w + 1))
    partner = rng.permutation(len(maps))
    box = (slice(None), slice(None), slice(top, top + box_h), slice(left, left + box_w))
    maps[box] = maps[partner][box]
    return partner, 1.0 - box_h * box_w / (height * width)


def cache_views(
    embedder: object,
    images: Sequence[np.ndarray],
    augment: Augmenter,
    settings: FinetuneSettings,
    log: Log,
) -> np.ndarray:
    """Frozen-trunk outputs of ``settings.views`` augmented views of every image, as float16
    (views, photos, C, H, W): computed once, reused by every epoch."""
    import torch

    started = time.monotonic()
    embedder.eval()  # type: ignore[attr-defined]
    out: np.ndarray | None = None
    with torch.no_grad():
        for view in range(settings.views):
            for first in range(0, len(images), 64):
                chunk = images[first : first + 64]
                x = torch.from_numpy(np.stack([augment(image) for image in chunk]))
                features = embedder.trunk(x.to(memory_format=torch.channels_last)).numpy()  # type: ignore[attr-defined]
                if out is None:
                    out = np.empty((settings.views, len(images), *features.shape[1:]), np.float16)
                out[view, first : first + len(chunk)] = features
            log(f"cached view {view + 1}/{settings.views} in {time.monotonic() - started:.0f} s")
    assert out is not None
    return out


def _accuracy(
    embedder: object,
    classifier: object,
    photos: Sequence[TrainingPhoto],
    settings: FinetuneSettings,
) -> float:
    import torch

    pre = Preprocessor(size=settings.size)
    embedder.eval()  # type: ignore[attr-defined]
    correct = 0
    with torch.no_grad():
        for first in range(0, len(photos), 64):
            chunk = photos[first : first + 64]
            x = torch.from_numpy(np.concatenate([pre(p.data) for p in chunk]))
            logits = classifier(embedder(x.to(memory_format=torch.channels_last)))  # type: ignore[operator]
            correct += int((logits.argmax(1).numpy() == np.array([p.label for p in chunk])).sum())
    return correct / len(photos)


def save_checkpoint(result: dict[str, object], path: Path) -> None:
    """Write the trained weights and recipe so export can run later without retraining."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(result, path)
