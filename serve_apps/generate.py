"""``POST /v1/generate``: run a requirement spec on the server, writing under the app's ``outputs_dir``.

The body is a requirement spec (``engine/requirements/spec.py``) whose paths are
the server's: ``model_path`` names a model of the store by id, ``data`` a file
under ``data_root``, and ``output.path`` a path under ``outputs_dir`` (default:
a folder named after the spec's digest). Nothing outside those folders is read
or written.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from engine.core.errors import SynthError
from serve_apps.errors import RequestRejected


def server_spec(body: Any, *, models_dir: str, data_root: str | None, outputs_dir: str):
    """The spec of a request with its paths made the server's; 422 naming the field when one points elsewhere."""
    from engine.requirements.spec import load_spec

    if not isinstance(body, dict):
        raise RequestRejected(422, "The body must be a requirement spec (a JSON object with num_rows, data or model_path, ...).")
    try:
        spec = load_spec(body)
    except SynthError as exc:
        raise RequestRejected(422, str(exc)) from None
    update: dict[str, Any] = {}
    if spec.model_path is not None:
        update["model_path"] = str(_inside(models_dir, spec.model_path, "model_path", "a model id of the store"))
    if spec.data is not None:
        if data_root is None:
            raise RequestRejected(422, "This server reads no source data ('data_root' is not set): give 'model_path' (a model id).")
        update["data"] = str(_inside(data_root, spec.data, "data", "a path under the data root"))
    digest = hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
    output = spec.output.model_dump() if spec.output is not None else {"path": f"generated-{digest}/data.parquet"}
    output["path"] = str(_inside(outputs_dir, output["path"], "output.path", "a path under the outputs folder"))
    update["output"] = output
    return load_spec({**spec.to_dict(), **update})


def _inside(root: str, relative: str, field: str, what: str) -> Path:
    base = Path(root).expanduser().resolve()
    path = (base / relative).resolve()
    if Path(relative).is_absolute() or "://" in relative or not path.is_relative_to(base):
        raise RequestRejected(422, f"'{field}' must be {what}; got {relative!r}.")
    return path


def run_generate(spec, outputs_dir: str) -> dict[str, Any]:
    """Run the spec; the answer names files relative to ``outputs_dir``."""
    from engine.requirements.run import generate

    try:
        result = generate(spec)
    except SynthError as exc:
        raise RequestRejected(422, str(exc)) from None
    base = Path(outputs_dir).expanduser().resolve()
    return {
        "num_rows": result.num_rows,
        "files": [str(Path(f).resolve().relative_to(base)) for f in result.files],
        "card": str(Path(result.card_path).resolve().relative_to(base)),
        "dataset_card": result.card,
    }
