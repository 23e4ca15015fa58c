"""The reversible image preprocessor: uint8 pixels <-> float rows in [-1, 1].

An encoded image row is the image's pixels, channels first and flattened
(``C * H * W`` floats in [-1, 1], as GAN and diffusion models expect), followed
by one float holding the class index (``-1`` for an unlabelled image). Rows of
that shape travel through the same Ray Dataset and training loop as encoded
table rows; :class:`ImageLayout` tells a model how to unflatten them.
Decoding rounds back to uint8, so an encoded real image decodes to itself.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from engine.core.errors import InvalidDataError, NotFittedError
from engine.core.labels import label_codes
from engine.images.io import ImageSet, read_images, to_nhwc


@dataclass(frozen=True)
class ImageLayout:
    """Shape of the encoded image rows a model trains on and generates."""

    channels: int
    height: int
    width: int
    class_names: tuple[str, ...] = field(default_factory=tuple)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def pixel_dim(self) -> int:
        return self.channels * self.height * self.width

    @property
    def dim(self) -> int:
        """Width of an encoded row: the pixels and the label slot."""
        return self.pixel_dim + 1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "class_names": list(self.class_names)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ImageLayout:
        return cls(int(d["channels"]), int(d["height"]), int(d["width"]), tuple(d.get("class_names") or ()))


class ImagePreprocessor:
    """Resizes images to one square size and channel count, and scales them to [-1, 1].

    Args:
        image_size: side of the square images models see (``None`` keeps the
            source's size, which must then be square).
        channels: 1 (grey) or 3 (colour); ``None`` keeps the source's.
    """

    def __init__(self, image_size: int | None = None, channels: int | None = None):
        if image_size is not None and (not isinstance(image_size, int) or image_size < 4):
            raise InvalidDataError(f"image_size must be an integer >= 4; got {image_size!r}.")
        if channels not in (None, 1, 3):
            raise InvalidDataError(f"channels must be 1 (grey) or 3 (colour); got {channels!r}.")
        self.image_size = image_size
        self.channels = channels
        self.layout_: ImageLayout | None = None

    def prepare(self, images: Any, labels: Any = None) -> ImageSet:
        """Read any accepted source (see ``read_images``) at this preprocessor's size and channel count."""
        image_set = read_images(images, labels, image_size=self.image_size, channels=self.channels)
        h, w = image_set.images.shape[1:3]
        if h != w:
            raise InvalidDataError(
                f"The images are {h}x{w}; models need square images: give image_size to resize them."
            )
        return image_set

    def fit(self, image_set: ImageSet) -> ImagePreprocessor:
        n, h, w, c = image_set.images.shape
        self.layout_ = ImageLayout(c, h, w, tuple(image_set.class_names or ()) if image_set.labels is not None else ())
        return self

    @property
    def layout(self) -> ImageLayout:
        if self.layout_ is None:
            raise NotFittedError("The image preprocessor is not fitted; call fit() first.")
        return self.layout_

    def transform(self, image_set: ImageSet) -> np.ndarray:
        """Encoded rows ``(N, C*H*W + 1)`` float32: pixels in [-1, 1], then the class index or -1."""
        layout = self.layout
        images = to_nhwc(image_set.images)
        if images.shape[1:] != (layout.height, layout.width, layout.channels):
            raise InvalidDataError(
                f"Images of shape {images.shape[1:]} do not match the fitted shape "
                f"{(layout.height, layout.width, layout.channels)}."
            )
        out = np.empty((len(images), layout.dim), dtype=np.float32)
        pixels = np.moveaxis(images, -1, 1).reshape(len(images), -1)
        np.multiply(pixels, np.float32(2.0 / 255.0), out=out[:, :-1], casting="unsafe")
        out[:, :-1] -= 1.0
        out[:, -1] = -1.0 if image_set.labels is None else np.asarray(image_set.labels, dtype=np.float32)
        return out

    def pixels_to_uint8(self, pixels: Any) -> np.ndarray:
        """Decode generated pixels ``(N, C, H, W)`` or flat rows in [-1, 1] to uint8 ``(N, H, W, C)``."""
        layout = self.layout
        arr = np.asarray(pixels, dtype=np.float32)
        arr = arr[:, : layout.pixel_dim].reshape(len(arr), layout.channels, layout.height, layout.width)
        return np.rint((np.clip(arr, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8).transpose(0, 2, 3, 1).copy()

    def label_codes(self, labels: Sequence[Any] | np.ndarray) -> np.ndarray:
        """Class indices for requested labels given as names (``"7"``) or indices (``7``)."""
        return label_codes(labels, self.layout.class_names)

    def to_dict(self) -> dict[str, Any]:
        return {"image_size": self.image_size, "channels": self.channels, "layout": self.layout.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ImagePreprocessor:
        pre = cls(d.get("image_size"), d.get("channels"))
        pre.layout_ = ImageLayout.from_dict(d["layout"])
        return pre
