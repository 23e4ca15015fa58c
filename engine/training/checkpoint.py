"""Training checkpoints without pickle: tensors in safetensors, everything else in JSON.

A checkpoint folder holds ``tensors.safetensors`` (model weights, optimiser
tensors) and ``state.json`` (the run's position: epochs and optimisation steps
completed, the phase in progress and how far it went, the batches of the data
epoch in progress already trained on; history, the positions the run resumed
at, model extra state, optimiser hyperparameters and step counters, learning-rate
schedules and the fp16 loss scale), written by rank 0, plus one
``rng_rank<r>.safetensors`` per worker rank ``r`` with that rank's random state
(torch step and global generators as tensors, numpy's bit generator state and a
digest of the rank's model state as JSON metadata). Ray Train merges the files
every rank reports into one checkpoint folder.

A checkpoint may fall inside a data epoch (a run counted in steps): rank
``r``'s numpy state is then the one the epoch started from, and a resumed run
draws the epoch again and skips its first ``epoch_batches`` batches, which
replays the same batch order up to the checkpoint.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

TENSORS = "tensors.safetensors"
STATE = "state.json"


@dataclass
class TrainingState:
    """Everything needed to continue a run exactly where it stopped."""

    epoch: int  # data epochs completed (read to their end) over the whole run
    model_tensors: dict[str, torch.Tensor]
    optimizers: dict[str, dict[str, Any]]  # torch optimizer state_dicts
    history: list[dict[str, Any]] = field(default_factory=list)
    extra_state: dict[str, Any] = field(default_factory=dict)
    resumed_at: list[int] = field(default_factory=list)  # epochs (or steps, for a run counted in steps) at each resumption
    step: int = 0  # optimisation steps completed over the whole run
    phase: int = 0  # index of the phase in progress (the number of phases once the run is complete)
    phase_progress: int = 0  # epochs or steps (the phase's unit) completed in that phase
    epoch_batches: int = 0  # batches of the data epoch in progress already trained on (0 at an epoch's end)
    schedulers: dict[str, dict[str, Any]] = field(default_factory=dict)  # LambdaLR state_dicts by optimiser
    grad_scaler: dict[str, Any] | None = None  # the fp16 GradScaler's state_dict


@dataclass
class RankRandomState:
    """One worker rank's random state, so a resumed run continues that rank's batch order."""

    numpy_rng: dict[str, Any]  # bit_generator.state, as the data epoch in progress started (now, at an epoch's end)
    torch_rng: torch.Tensor  # the step generator's state
    torch_global_rng: torch.Tensor
    state_digest: str = ""  # state_digest() of the model as this rank held it when saving


def rank_file(rank: int) -> str:
    return f"rng_rank{rank}.safetensors"


def state_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of names, dtypes, shapes and bytes: equal only for bit-identical states."""
    digest = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous().reshape(-1)
        digest.update(f"{key}|{t.dtype}|{tuple(tensors[key].shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_rank_random_state(directory: str | Path, rank: int, rs: RankRandomState) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(
        {"torch": rs.torch_rng.contiguous(), "torch_global": rs.torch_global_rng.contiguous()},
        str(directory / rank_file(rank)),
        metadata={"numpy_rng": json.dumps(rs.numpy_rng, default=_json_default), "state_digest": rs.state_digest},
    )


def load_rank_random_state(directory: str | Path, rank: int) -> RankRandomState | None:
    """Rank ``rank``'s random state, or None when the checkpoint was written by fewer workers."""
    path = Path(directory) / rank_file(rank)
    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        return RankRandomState(
            numpy_rng=json.loads(meta["numpy_rng"]),
            torch_rng=f.get_tensor("torch"),
            torch_global_rng=f.get_tensor("torch_global"),
            state_digest=meta.get("state_digest", ""),
        )


def rank_digests(directory: str | Path) -> dict[int, str]:
    """The model-state digest every rank recorded in the checkpoint at ``directory``."""
    out: dict[int, str] = {}
    for path in Path(directory).glob("rng_rank*.safetensors"):
        rank = int(path.name[len("rng_rank") : -len(".safetensors")])
        rs = load_rank_random_state(directory, rank)
        if rs is not None:
            out[rank] = rs.state_digest
    return dict(sorted(out.items()))


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
    save_file(tensors, str(directory / TENSORS))
    doc = {
        "epoch": st.epoch,
        "history": st.history,
        "extra_state": st.extra_state,
        "optimizers": optim_meta,
        "resumed_at": st.resumed_at,
        "step": st.step,
        "phase": st.phase,
        "phase_progress": st.phase_progress,
        "epoch_batches": st.epoch_batches,
        "schedulers": st.schedulers,
        "grad_scaler": st.grad_scaler,
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
        resumed_at=[int(e) for e in doc.get("resumed_at", [])],
        # Checkpoints written before phases and steps existed: one phase, at an epoch's end.
        step=int(doc.get("step", 0)),
        phase=int(doc.get("phase", 0)),
        phase_progress=int(doc.get("phase_progress", doc["epoch"])),
        epoch_batches=int(doc.get("epoch_batches", 0)),
        schedulers=dict(doc.get("schedulers") or {}),
        grad_scaler=doc.get("grad_scaler"),
    )


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, torch.Tensor):
        return o.item() if o.numel() == 1 else o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
