"""A small CNN trained on the real images: domain features and a class judge.

Inception features were learned on ImageNet photographs; on digits or X-rays
they measure little of what matters and cost seconds per batch on a CPU. This
network is trained in a minute on the real images themselves. With labels it
learns to name the class, and then also judges generated images: the
*conditional accuracy* is the share of generated images it assigns to the
class they were asked for. Without labels it learns to tell by how much an
image was rotated (0, 90, 180, 270 degrees; Gidaris et al. 2018), which needs
no labels and still learns the shapes of the domain. Either way its 128-d
pooled activations are the domain features for FID, KID and precision/recall.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from engine.core.errors import InvalidDataError, NotFittedError
from engine.images.io import to_nhwc

FEATURE_DIM = 128


class _Net(nn.Module):
    def __init__(self, channels: int, num_outputs: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            # A 4x4 map keeps where strokes are (a global average would not), at any input size.
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(64 * 16, FEATURE_DIM), nn.ReLU(),
        )
        self.head = nn.Linear(FEATURE_DIM, num_outputs)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.body(x)
        return feats, self.head(feats)


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


class DomainClassifier:
    """A CNN fitted on real images; ``features`` for distances, ``predict`` for classes.

    Args:
        epochs: passes over the (capped) training images.
        max_train_images: at most this many real images are used for training
            (a random subset), which bounds the time on large sets.
        seed: fixes the initial weights and the batch order.
        device: ``"cuda"`` when available, else the CPU.
    """

    def __init__(self, *, epochs: int = 3, max_train_images: int = 20_000, batch_size: int = 128, seed: int = 0,
                 device: str | None = None):
        self.epochs = epochs
        self.max_train_images = max_train_images
        self.batch_size = batch_size
        self.seed = seed
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.net_: _Net | None = None
        self.task_: str | None = None  # "classes" or "rotation"
        self.image_shape_: tuple[int, ...] | None = None
        self.train_accuracy_: float | None = None

    def fit(self, images: np.ndarray, labels: np.ndarray | None = None) -> "DomainClassifier":
        """Train on real images; ``labels`` (integer codes ``0..K-1``) make it a class judge."""
        x = to_nhwc(images, where="real images")
        rng = np.random.default_rng(self.seed)
        keep = rng.permutation(len(x))[: self.max_train_images]
        x = x[keep]
        if labels is not None:
            y = np.asarray(labels, dtype=np.int64)[keep]
            self.task_, num_outputs = "classes", int(y.max()) + 1
        else:
            y = None
            self.task_, num_outputs = "rotation", 4
            if x.shape[1] != x.shape[2]:
                raise InvalidDataError(f"Rotation training needs square images; got {x.shape[1]}x{x.shape[2]}.")
        self.image_shape_ = x.shape[1:]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = _Net(x.shape[-1], num_outputs).to(self.device)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        data = _to_tensor(x)
        targets = torch.from_numpy(y) if y is not None else None
        net.train()
        correct = seen = 0
        for epoch in range(self.epochs):
            order = torch.from_numpy(rng.permutation(len(data)))
            for i in range(0, len(order), self.batch_size):
                idx = order[i : i + self.batch_size]
                batch = data[idx]
                if targets is None:
                    turns = torch.from_numpy(rng.integers(0, 4, len(idx)))
                    batch = torch.stack([torch.rot90(b, int(t), dims=(1, 2)) for b, t in zip(batch, turns)])
                    target = turns
                else:
                    target = targets[idx]
                batch, target = batch.to(self.device), target.to(self.device)
                _, logits = net(batch)
                loss = F.cross_entropy(logits, target)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if epoch == self.epochs - 1:
                    correct += int((logits.argmax(1) == target).sum())
                    seen += len(idx)
        self.net_ = net.eval()
        self.train_accuracy_ = correct / max(seen, 1)
        return self

    def _require_fitted(self) -> _Net:
        if self.net_ is None:
            raise NotFittedError("The domain classifier is not trained yet: call fit(real_images) first.")
        return self.net_

    @torch.inference_mode()
    def _run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        net = self._require_fitted()
        x = to_nhwc(images)
        if x.shape[1:] != self.image_shape_:
            raise InvalidDataError(
                f"The domain classifier was trained on images of shape {self.image_shape_}; got {x.shape[1:]}."
            )
        feats, logits = [], []
        for i in range(0, len(x), 512):
            f, lg = net(_to_tensor(x[i : i + 512]).to(self.device))
            feats.append(f.cpu())
            logits.append(lg.cpu())
        return torch.cat(feats).numpy(), torch.cat(logits).numpy()

    def features(self, images: np.ndarray) -> np.ndarray:
        """Pooled 128-d activations ``(N, 128)``."""
        return self._run(images)[0]

    def predict(self, images: np.ndarray) -> np.ndarray:
        """The class code each image is judged to show (needs a classifier trained with labels)."""
        if self.task_ != "classes":
            raise NotFittedError("This domain classifier was trained without labels; it cannot name classes.")
        return self._run(images)[1].argmax(axis=1)
