"""Seeded random streams: every random draw of the engine comes from an explicit ``(seed, stream)`` pair.

A stream is a shard index, a worker rank or any other integer that must give
draws independent of the other streams of the same seed.
"""
from __future__ import annotations

import numpy as np
import torch


def seed_streams(seed: int, stream: int) -> tuple[torch.Generator, np.random.Generator]:
    """Independent torch and numpy generators for one ``(seed, stream)`` pair."""
    seq = np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, int(stream)])
    torch_seed, numpy_seed = seq.generate_state(2, dtype=np.uint64)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(torch_seed) & 0x7FFFFFFFFFFFFFFF)
    return gen, np.random.default_rng(int(numpy_seed))
