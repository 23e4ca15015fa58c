"""Convolutional generator and discriminator of the DCGAN family (Radford et al. 2015).

Both networks adapt to the image size: the generator starts from a small
``base x base`` map and doubles it ``k`` times, the discriminator halves it
back, where ``size = base * 2**k`` and ``base >= 4`` (28 -> 7 * 2**2,
32 -> 4 * 2**3, 64 -> 4 * 2**4). Class conditioning, when there are classes,
feeds a label embedding to the generator with the noise and uses a projection
discriminator (Miyato & Koyama 2018): the label's embedding is dotted with the
image features, which conditions more strongly than appending label planes.
"""
from __future__ import annotations

import torch
from torch import nn

from engine.core.errors import InvalidDataError


def upsampling_plan(size: int) -> tuple[int, int]:
    """``(base, k)`` with ``size == base * 2**k``, ``base >= 4`` and ``k`` as large as possible."""
    base, k = size, 0
    while base % 2 == 0 and base // 2 >= 4:
        base //= 2
        k += 1
    if k == 0:
        raise InvalidDataError(
            f"image_size {size} cannot be built by doubling a map of side >= 4; use an even size such as 28, 32 or 64."
        )
    return base, k


def _norm2d(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # per-sample normalisation: the WGAN-GP critic must not mix samples of a batch
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"Unknown normalisation {kind!r}; expected 'batch', 'layer' or 'none'.")


class ConvGenerator(nn.Module):
    """Noise (and a class) -> image in [-1, 1], ``(B, channels, size, size)``."""

    def __init__(self, latent_dim: int, size: int, channels: int, width: int, num_classes: int = 0):
        super().__init__()
        base, k = upsampling_plan(size)
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        top = width * 2 ** (k - 1)
        self.base = base
        self.project = nn.Sequential(
            nn.Linear(latent_dim * (2 if num_classes else 1), top * base * base, bias=False),
            nn.Unflatten(1, (top, base, base)),
            nn.BatchNorm2d(top),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        ch = top
        for _ in range(k - 1):
            blocks += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(inplace=True)]
            ch //= 2
        blocks += [nn.ConvTranspose2d(ch, channels, 4, 2, 1), nn.Tanh()]
        self.blocks = nn.Sequential(*blocks)
        # The label embedding keeps the small N(0, 0.02) start of every other weight. Started on the
        # scale of the noise (N(0, 1)), the class drowned the noise: the generator learned one image
        # per class and ignored z (mode collapse within each class), which the tests guard against.
        self.apply(_dcgan_init)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.blocks(self.project(z))


class ConvDiscriminator(nn.Module):
    """Image (and its class) -> one realness score per image (a logit, or a critic value)."""

    def __init__(self, size: int, channels: int, width: int, num_classes: int = 0, norm: str = "batch"):
        super().__init__()
        base, k = upsampling_plan(size)
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        ch = width
        for _ in range(k - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=norm == "none"), _norm2d(norm, ch * 2), nn.LeakyReLU(0.2, inplace=True)]
            ch *= 2
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        feat_dim = ch * base * base
        self.score = nn.Linear(feat_dim, 1)
        self.embed = nn.Embedding(num_classes, feat_dim) if num_classes else None
        self.apply(_dcgan_init)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(images)
        out = self.score(h).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(labels) * h).sum(dim=1)
        return out


def _dcgan_init(m: nn.Module) -> None:
    # The DCGAN paper's initialisation: N(0, 0.02) weights; BatchNorm scales around 1.
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Embedding):
        nn.init.normal_(m.weight, 0.0, 0.02)
