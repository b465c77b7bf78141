"""Typed errors of the vision package. Each carries a stable ``code`` and a message a person can act
on, so the web layer can turn it into a 4xx answer without guessing what went wrong."""

from __future__ import annotations


class VisionError(Exception):
    """Base of every error the vision package raises on purpose."""

    code = "vision_error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ImageError(VisionError):
    """The bytes given as a photo cannot be used: empty, not an image, damaged or too large."""

    code = "bad_image"


class ImageTooLargeError(ImageError):
    """The image declares more pixels than the configured limit; it is refused before decoding."""

    code = "image_too_large"


class ModelError(VisionError):
    """The ONNX model file is missing, unreadable or does not have the expected shape."""

    code = "bad_model"


class GalleryError(VisionError):
    """The gallery cannot answer: nothing enrolled, or embeddings from another model."""

    code = "gallery_error"
