"""Numeric precision of generation: float32, or bfloat16 where the hardware multiplies it natively.

Sampling a trained tabular generator is a few dense matrix products per row.
On CPUs with native bfloat16 dot products (AVX-512 BF16, AMX) those run
several times faster in bfloat16 than in float32; elsewhere bfloat16 is
emulated and slower, so ``"auto"`` keeps float32 there. Training always runs
in float32: only the copy of the network used for generation is cast.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import torch
from torch import nn

from engine.training.config import InvalidOptionError

Precision = Literal["auto", "float32", "bfloat16"]
PRECISIONS: tuple[str, ...] = ("auto", "float32", "bfloat16")


def check_precision(value: object, owner: str = "sampling_precision") -> str:
    """``value`` if it names a precision, else a clear error listing the valid ones."""
    if value not in PRECISIONS:
        raise InvalidOptionError(
            f"The {owner!r} parameter must be one of {', '.join(map(repr, PRECISIONS))}. Got {value!r} instead."
        )
    return str(value)


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices natively (faster than float32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    cpu = getattr(torch, "cpu", None)
    # Private probes of torch's CPU dispatcher; absent in some builds, where float32 is the safe answer.
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(check()) for check in checks if callable(check))


def generation_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The dtype generation runs in for ``precision`` on ``device``."""
    precision = check_precision(precision)
    if precision == "bfloat16" or (precision == "auto" and device.type == "cpu" and native_bfloat16(device)):
        return torch.bfloat16
    return torch.float32


def cast_copy(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    """A frozen, eval-mode copy of ``module`` in ``dtype``."""
    return copy.deepcopy(module).requires_grad_(False).eval().to(dtype)


class InferenceCopies:
    """Generation-time forms of a model's networks, rebuilt when the trained weights change.

    ``get(key, module, dtype, build)`` returns ``build(module, dtype)``, cached
    until a parameter or buffer of ``module`` is modified in place (an optimiser
    step, ``load_state_dict``) or moved to another device. Without ``build``, a
    float32 request returns the trained module itself (``evaluating`` switches
    it to eval mode meanwhile) and any other dtype a :func:`cast_copy`.
    """

    def __init__(self) -> None:
        self._cache: dict[str, tuple[tuple, Any]] = {}

    @staticmethod
    def _version(module: nn.Module, dtype: torch.dtype) -> tuple:
        tensors = [*module.parameters(), *module.buffers()]
        return (dtype, tuple((t.device, t._version, t.data_ptr()) for t in tensors))

    def get(self, key: str, module: nn.Module, dtype: torch.dtype, build: Callable[[nn.Module, torch.dtype], Any] | None = None) -> Any:
        if build is None:
            if dtype == torch.float32:
                return module
            build = cast_copy
        version = self._version(module, dtype)
        cached = self._cache.get(key)
        if cached is None or cached[0] != version:
            self._cache[key] = (version, build(module, dtype))
        return self._cache[key][1]

    @contextmanager
    def evaluating(self, key: str, module: nn.Module, dtype: torch.dtype) -> Iterator[nn.Module]:
        """The module to generate with, ``module`` switched to eval mode meanwhile (then restored)."""
        was_training = module.training
        module.eval()
        try:
            yield self.get(key, module, dtype)
        finally:
            module.train(was_training)
