"""Fine-tunes the EfficientNet-Lite0 embedding on a store's enrolled product photos.

Why: ImageNet features used frozen stop at about 0.80 top-1 on shop photos of look-alike products
(apple varieties, juice cartons); adapting the upper blocks to the catalogue is what closes the gap.
The recipe is deliberately CPU-sized: the stem and the first blocks stay frozen, images are decoded
once into memory, and augmentation is plain OpenCV/numpy (random resized crops, flips, colour
jitter), with label smoothing and a cosine learning-rate schedule.
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
class FinetuneSettings:
    """The training recipe; every figure here is written into the model's provenance."""

    size: int = 224
    epochs: int = 12
    batch_size: int = 32
    frozen_blocks: int = 5
    backbone_lr: float = 1e-3
    classifier_lr: float = 1e-2
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    cosine_scale: float = 16.0
    min_crop_area: float = 0.25
    cache_short_side: int = 320
    threads: int = 2
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
) -> dict[str, object]:
    """Train the embedding on ``photos`` and return ``{"state_dict", "settings", "history"}``.

    ``monitor`` photos (for development only) are classified after every few epochs so a run can be
    watched; they never influence the weights.
    """
    require_torch()
    import torch

    from vision.tools.network import CosineClassifier, Embedder, load_imagenet

    if not photos:
        raise ValueError("no photos to train on; enrol reference photos first")
    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    rng = np.random.default_rng(settings.seed)
    started = time.monotonic()
    images = decode_all(photos, settings)
    labels = np.array([p.label for p in photos], dtype=np.int64)
    log(f"decoded {len(images)} photos in {time.monotonic() - started:.1f} s")

    embedder = Embedder(load_imagenet(settings.size), settings.frozen_blocks)
    classifier = CosineClassifier(1280, classes, settings.cosine_scale)
    model = torch.nn.Sequential(embedder, torch.nn.Dropout(0.2), classifier)
    model = model.to(memory_format=torch.channels_last)
    optimiser = torch.optim.AdamW(
        [
            {"params": [p for p in embedder.parameters() if p.requires_grad], "lr": settings.backbone_lr},
            {"params": classifier.parameters(), "lr": settings.classifier_lr},
        ],
        weight_decay=settings.weight_decay,
    )
    steps_per_epoch = math.ceil(len(images) / settings.batch_size)
    total = steps_per_epoch * settings.epochs
    warmup = steps_per_epoch // 2
    base = [group["lr"] for group in optimiser.param_groups]
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
    augment = Augmenter(settings, rng)
    history: list[dict[str, float]] = []
    step = 0
    for epoch in range(settings.epochs):
        model.train()
        order = rng.permutation(len(images))
        seen = correct = 0
        loss_sum = 0.0
        epoch_start = time.monotonic()
        for first in range(0, len(order), settings.batch_size):
            batch = order[first : first + settings.batch_size]
            if len(batch) < 2:  # batch norm needs two samples
                continue
            factor = (step + 1) / warmup if step < warmup else 0.5 * (1 + math.cos(math.pi * step / total))
            for group, lr in zip(optimiser.param_groups, base, strict=True):
                group["lr"] = lr * factor
            x = torch.from_numpy(np.stack([augment(images[i]) for i in batch]))
            x = x.to(memory_format=torch.channels_last)
            y = torch.from_numpy(labels[batch])
            logits = model(x)
            loss = loss_fn(logits, y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
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
        if monitor and ((epoch + 1) % 4 == 0 or epoch + 1 == settings.epochs):
            record["monitor_acc"] = _accuracy(model, monitor, settings)
        history.append(record)
        log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
    return {
        "state_dict": embedder.state_dict(),
        "classifier": classifier.state_dict(),
        "settings": asdict(settings),
        "history": history,
    }


def _accuracy(model: object, photos: Sequence[TrainingPhoto], settings: FinetuneSettings) -> float:
    import torch

    pre = Preprocessor(size=settings.size)
    model.eval()  # type: ignore[attr-defined]
    correct = 0
    with torch.no_grad():
        for first in range(0, len(photos), 64):
            chunk = photos[first : first + 64]
            x = torch.from_numpy(np.concatenate([pre(p.data) for p in chunk]))
            pred = model(x.to(memory_format=torch.channels_last)).argmax(1).numpy()  # type: ignore[operator]
            correct += int((pred == np.array([p.label for p in chunk])).sum())
    return correct / len(photos)


def save_checkpoint(result: dict[str, object], path: Path) -> None:
    """Write the trained weights and recipe so export can run later without retraining."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(result, path)
