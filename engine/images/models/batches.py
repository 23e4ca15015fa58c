"""How image models draw their training batches from one worker's shard of encoded images."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from engine.core.contract import BatchSampler


class ImageBatches(BatchSampler):
    """Shuffled ``(images, labels)`` minibatches of encoded image rows (see ``engine.images.transforms``).

    Yields images ``(B, C, H, W)`` in [-1, 1] and int64 labels ``(B,)`` (-1 when
    unlabelled). ``steps_per_batch > 1`` yields that many consecutive minibatches
    stacked on a leading axis, for models that take several critic steps on
    fresh data per optimisation step.
    """

    def __init__(self, data: np.ndarray, shape: tuple[int, int, int], batch_size: int,
                 rng: np.random.Generator, steps_per_batch: int = 1):
        self.pixels = torch.from_numpy(np.ascontiguousarray(data[:, :-1], dtype=np.float32)).reshape(len(data), *shape)
        self.labels = torch.from_numpy(np.rint(data[:, -1]).astype(np.int64))
        self.rng = rng
        self.steps = steps_per_batch
        # A shard smaller than one batch still trains: the batch shrinks to the shard.
        self.batch_size = max(1, min(batch_size, len(data) // steps_per_batch))

    def __len__(self) -> int:
        return max(1, len(self.pixels) // (self.batch_size * self.steps))

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        take = self.batch_size * self.steps
        n = len(self.pixels)
        if n >= take:
            order = torch.from_numpy(self.rng.permutation(n))
        else:
            # A shard with fewer rows than steps (3 images, 5 critic iterations) cannot fill one step with
            # distinct rows; successive shuffles repeat them, rather than taking fewer steps than configured.
            order = torch.from_numpy(np.concatenate([self.rng.permutation(n) for _ in range(-(-take // n))])[:take])
        for i in range(len(self)):
            idx = order[i * take : (i + 1) * take]
            images, labels = self.pixels[idx], self.labels[idx]
            if self.steps > 1:
                images = images.reshape(self.steps, self.batch_size, *images.shape[1:])
                labels = labels.reshape(self.steps, self.batch_size)
            yield images, labels
