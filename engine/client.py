"""A small Python client of the serving API (``serve_apps``).

Example::

    from engine.client import SynthClient

    client = SynthClient("http://127.0.0.1:8000", api_key=os.environ["SYNTH_API_KEY"])
    client.models()                                  # ['adult-ctgan', ...]
    rows = client.sample("adult-ctgan", 1000, conditions={"income": ">50K"}, seed=7)
    report = client.evaluate(real="adult.csv", synthetic=rows)   # real by reference, synthetic uploaded
"""
from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import httpx
import pandas as pd

from engine.core.errors import SynthError

TableArg = str | os.PathLike[str] | pd.DataFrame | bytes


class ServiceError(SynthError):
    """The server refused or failed a request; ``status`` is the HTTP status, the message is the server's."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class SynthClient:
    """Talks to one deployment of the API.

    Args:
        base_url: e.g. ``"http://127.0.0.1:8000"``.
        api_key: the bearer token (``None`` when the server runs without auth).
        timeout: seconds to wait for a response to start (and between streamed chunks).
    """

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 300.0):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "SynthClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _check(response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ServiceError(response.status_code, str(detail))
        return response

    def health(self) -> bool:
        return self._http.get("/healthz").status_code == 200

    def models(self) -> list[str]:
        """Ids of the models in the server's store."""
        return [m["id"] for m in self._check(self._http.get("/v1/models")).json()["models"]]

    def model(self, model_id: str) -> dict[str, Any]:
        """A model's schema, columns (with categories), constraints and training metrics."""
        return self._check(self._http.get(f"/v1/models/{model_id}")).json()

    def sample(
        self,
        model_id: str,
        num_rows: int,
        conditions: Mapping[str, Any] | None = None,
        seed: int | None = None,
        format: Literal["json", "csv", "parquet"] = "json",
    ) -> pd.DataFrame:
        """Exactly ``num_rows`` generated rows as a DataFrame (``format`` is only the wire format).

        Raises ``ServiceError`` if the server refuses the request, and ``SynthError``
        if a streamed answer arrives incomplete.
        """
        body: dict[str, Any] = {"num_rows": num_rows, "format": format}
        if conditions is not None:
            body["conditions"] = dict(conditions)
        if seed is not None:
            body["seed"] = seed
        buf = io.BytesIO()
        try:
            with self._http.stream("POST", f"/v1/models/{model_id}/sample", json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    self._check(response)
                expected = int(response.headers.get("x-synth-num-rows", num_rows))
                for part in response.iter_bytes():
                    buf.write(part)
        except httpx.RemoteProtocolError as exc:
            raise SynthError(f"The server broke off the answer for {model_id!r} before the end: {exc}") from None
        buf.seek(0)
        if format == "parquet":
            frame = pd.read_parquet(buf)
        elif format == "csv":
            frame = pd.read_csv(buf, keep_default_na=False, na_values=[""])
        else:
            frame = pd.read_json(buf, orient="records", convert_dates=False)
        if len(frame) != expected:
            raise SynthError(f"The server sent {len(frame)} rows for {model_id!r}; {expected} were announced.")
        return frame

    def evaluate(
        self,
        real: TableArg,
        synthetic: TableArg,
        *,
        holdout: TableArg | None = None,
        target: str | None = None,
        html: bool = False,
    ) -> dict[str, Any] | str:
        """The evaluation report (a dict, or the HTML page with ``html=True``).

        A ``str`` table is a path relative to the server's data root; a
        DataFrame, bytes or an existing local ``Path`` is uploaded.
        """
        tables = {"real": real, "synthetic": synthetic, **({"holdout": holdout} if holdout is not None else {})}
        fmt = "html" if html else "json"
        if all(isinstance(t, str) for t in tables.values()):
            payload: dict[str, Any] = {**tables, "format": fmt, **({"target": target} if target else {})}
            response = self._http.post("/v1/evaluate", json=payload)
        else:
            files: dict[str, Any] = {}
            data: dict[str, str] = {"format": fmt, **({"target": target} if target else {})}
            for name, table in tables.items():
                if isinstance(table, str):
                    data[name] = table
                else:
                    files[name] = (*_to_upload(name, table), "application/octet-stream")
            response = self._http.post("/v1/evaluate", data=data, files=files)
        self._check(response)
        return response.text if html else response.json()


def _to_upload(name: str, table: pd.DataFrame | bytes | os.PathLike[str]) -> tuple[str, bytes]:
    """(file name, bytes) to upload; the server tells CSV from Parquet by content."""
    if isinstance(table, bytes):
        return name, table
    if isinstance(table, pd.DataFrame):
        out = io.BytesIO()
        table.to_parquet(out, index=False)
        return f"{name}.parquet", out.getvalue()
    path = Path(table)
    return path.name, path.read_bytes()
