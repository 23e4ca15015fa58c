"""Training checkpoints without pickle: tensors in safetensors, everything else in JSON.

A checkpoint folder holds ``tensors.safetensors`` (model weights, optimiser
tensors, the torch RNG states) and ``state.json`` (epoch, history, model extra
state, optimiser hyperparameters and step counters, the numpy RNG state).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

TENSORS = "tensors.safetensors"
STATE = "state.json"


@dataclass
class TrainingState:
    """Everything needed to continue a run exactly where it stopped."""

    epoch: int  # epochs completed
    model_tensors: dict[str, torch.Tensor]
    optimizers: dict[str, dict[str, Any]]  # torch optimizer state_dicts
    history: list[dict[str, float]] = field(default_factory=list)
    extra_state: dict[str, Any] = field(default_factory=dict)
    numpy_rng: dict[str, Any] | None = None  # bit_generator.state
    torch_rng: torch.Tensor | None = None  # the step generator's state
    torch_global_rng: torch.Tensor | None = None


def _split_optimizer(name: str, sd: Mapping[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    meta: dict[str, Any] = {"param_groups": sd["param_groups"], "state": {}}
    for pid, pstate in sd["state"].items():
        scalars = {}
        for key, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{name}.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[key] = value
        meta["state"][str(pid)] = scalars
    return meta


def _join_optimizer(name: str, meta: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for pid, scalars in meta["state"].items():
        state[int(pid)] = dict(scalars)
    prefix = f"optim.{name}."
    for key, value in tensors.items():
        if key.startswith(prefix):
            pid, _, field_name = key[len(prefix) :].partition(".")
            state.setdefault(int(pid), {})[field_name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(directory: str | Path, st: TrainingState) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in st.model_tensors.items()}
    optim_meta = {name: _split_optimizer(name, sd, tensors) for name, sd in st.optimizers.items()}
    if st.torch_rng is not None:
        tensors["rng.torch"] = st.torch_rng
    if st.torch_global_rng is not None:
        tensors["rng.torch_global"] = st.torch_global_rng
    save_file(tensors, str(directory / TENSORS))
    doc = {
        "epoch": st.epoch,
        "history": st.history,
        "extra_state": st.extra_state,
        "optimizers": optim_meta,
        "numpy_rng": st.numpy_rng,
    }
    (directory / STATE).write_text(json.dumps(doc, default=_json_default))


def load_checkpoint(directory: str | Path) -> TrainingState:
    directory = Path(directory)
    tensors = load_file(str(directory / TENSORS))
    doc = json.loads((directory / STATE).read_text())
    return TrainingState(
        epoch=int(doc["epoch"]),
        model_tensors={k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")},
        optimizers={name: _join_optimizer(name, meta, tensors) for name, meta in doc["optimizers"].items()},
        history=list(doc["history"]),
        extra_state=dict(doc["extra_state"]),
        numpy_rng=doc.get("numpy_rng"),
        torch_rng=tensors.get("rng.torch"),
        torch_global_rng=tensors.get("rng.torch_global"),
    )


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, torch.Tensor):
        return o.item() if o.numel() == 1 else o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
