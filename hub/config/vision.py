"""Settings for photo search: which ONNX model runs, how many threads it gets, the safety limit on
uploaded images and when an answer counts as confident."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from pydantic import Field

from hub.config.base import StrictModel

#: The model shipped with the hub: EfficientNet-Lite0 fine-tuned on the demo catalogue, int8.
PACKAGED_MODEL = Path(str(resources.files("vision.models") / "grocery-lite0-int8.onnx"))


class VisionConfig(StrictModel):
    """Photo product search at the kiosk."""

    enabled: bool = Field(default=True, description="Load the photo model and serve photo search.")
    model_path: Path | None = Field(
        default=None,
        description="ONNX embedding model: input (N, 3, S, S) RGB scaled (x - 127) / 128, output "
        "(N, D) features. Unset: the model shipped with the hub "
        "(vision/models/grocery-lite0-int8.onnx). Relative paths are resolved against the config "
        "file. Changing it re-embeds the enrolled photos at the next start.",
    )

    @property
    def model_file(self) -> Path:
        """The model to load: the configured file, or the packaged one."""
        return self.model_path or PACKAGED_MODEL

    reference_pack: Path | None = Field(
        default=None,
        description="Reference pack (written by 'retail-hub vision pack'): embeddings of "
        "reference photos that are not in the store's images folder, added to the "
        "gallery when the pack was made with the loaded model. The demo store sets it to its pack "
        "of the Grocery Store train photos. Relative paths are resolved against the config file.",
    )
    threads: int = Field(
        default=1, ge=1, le=8, description="onnxruntime intra-op threads for one inference."
    )
    max_pixels: int = Field(
        default=50_000_000,
        ge=100_000,
        le=200_000_000,
        description="Largest image (width x height) accepted; checked from the file header before "
        "decoding, so oversized photos and decompression bombs are refused without using memory.",
    )
    top_k: int = Field(default=5, ge=1, le=20, description="Products returned per photo search.")
    confidence_threshold: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Calibrated score below which an answer is marked not confident ('not sure').",
    )
    min_similarity: float = Field(
        default=0.4,
        ge=-1.0,
        le=1.0,
        description="Cosine similarity to the nearest product's mean embedding below which a photo "
        "is taken to show none of the products ('not sure'). The one gate a gallery of a single "
        "photo per product has; on the shipped model 99 % of real shop photos score above 0.45.",
    )
    max_distance_ratio: float = Field(
        default=5.0,
        gt=0.0,
        le=100.0,
        description="Distance from a photo to the nearest product in the photo head's whitened "
        "space, as a multiple of held-out enrolled photos' median distance, above which the "
        "photo is taken to show none of the products ('not sure'). Catches pictures that "
        "resemble a product by cosine (text, logos, screenshots); used once products have a few "
        "photos besides the catalogue image (at least 5 can be held out).",
    )
