"""The HTTP API: a FastAPI ingress in front of the generation and evaluation deployments.

Routes (OpenAPI page at ``/docs``)::

    GET  /healthz                          liveness (no key needed)
    GET  /v1/models                        the models in the store
    GET  /v1/models/{model_id}             the model card (its modality's describe(): columns, classes, metrics)
    POST /v1/models/{model_id}/sample      samples in a format of the model's modality (large answers streamed)
    POST /v1/evaluate                      evaluation report (JSON, or HTML on request)
    GET  /v1/stats                         streams in progress, models held

The app never branches on modalities: it looks a model's modality up in the
registry (``engine.core.registry``) from the model's manifest, and takes the
formats it answers in, the per-modality limits of ``AppArgs`` and the unit of
its messages from there; the model itself answers through the
``Synthesizer`` interface. Plugin modalities are served by listing them in
``AppArgs.modalities``.

Build it with ``build_app`` (``serve run serve_apps/config.yaml``, ``synth
serve``, or ``serve.run(build_app({...}))``).
"""
# No `from __future__ import annotations` here: Serve reads build_app's parameter
# annotation as a class to validate the YAML args, and FastAPI reads the routes' ones.
import asyncio
import json
import logging
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError
from ray import serve
from ray.serve.handle import DeploymentHandle, DeploymentResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.core.registry import Modality
from serve_apps.config import (
    AppArgs,
    ServeConfigError,
    check_modalities,
    key_digest,
    read_api_key,
    register_modalities,
    token_matches,
)
from serve_apps.errors import Failure, RequestRejected
from serve_apps.evaluator import TABLE_FIELDS, Evaluator, TableInput
from serve_apps.formats import ENCODERS, Format, FormatMismatch, ipc_to_table, make_encoder
from serve_apps.generator import Generator
from serve_apps.store import StoreIndex

logger = logging.getLogger("ray.serve")
API_VERSION = "v1"
MAX_SEED = 2**63 - 1


# ---------------------------------------------------------------- request bodies
class SampleRequest(BaseModel):
    """Body of ``POST /v1/models/{model_id}/sample``."""

    model_config = ConfigDict(extra="forbid")

    num_rows: StrictInt = Field(ge=1, description="exact number of samples (rows, images, ...) to generate", examples=[1000])
    conditions: dict[str, Any] | None = Field(
        default=None,
        description="what every sample must meet, as the model's modality takes it. Tables: {column: value} for "
        "categories, {column: {'between': [lo, hi]}} or '>=', '<=', '>', '<' for ranges; image models: {'label': class}",
        examples=[{"income": ">50K", "age": {"between": [30, 50]}}],
    )
    seed: StrictInt | None = Field(
        default=None, ge=0, le=MAX_SEED, description="the same seed gives the same rows; omitted: a fresh one, returned in X-Synth-Seed"
    )
    label: StrictInt | str | None = Field(
        default=None, description="short for conditions {'label': label}: the class of every sample (name or index), "
        "for models that generate by class; omitted: the training class mix",
        examples=["7"],
    )
    format: Format | None = Field(
        default=None,
        description="one of the formats of the model's modality (its model card lists them; omitted: the first). "
        "Tables: json, csv or parquet; images: zip of PNG files, parquet (PNG bytes and label) or png (one image); audio: zip of WAV files, parquet (WAV bytes and label) or wav (one clip)",
    )


class EvaluateRequest(BaseModel):
    """JSON body of ``POST /v1/evaluate`` (tables by reference; upload them with multipart/form-data instead)."""

    model_config = ConfigDict(extra="forbid")

    real: str = Field(description="path of the real table, relative to the server's data root")
    synthetic: str = Field(description="path of the synthetic table, relative to the data root")
    holdout: str | None = Field(default=None, description="real rows the synthesizer never saw (ML efficacy, privacy)")
    target: str | None = Field(default=None, description="target column for ML efficacy")
    format: Literal["json", "html"] = Field(default="json", description="report as JSON or as a self-contained HTML page")
    privacy: StrictBool = True
    detection: StrictBool = True


# ---------------------------------------------------------------- body size limit
class BodyLimit:
    """ASGI middleware: 413 for a request body over its route's limit, counted as it arrives."""

    def __init__(self, app: Any, limit_for: Callable[[str], int]):
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope["path"])
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        what = "upload" if scope["path"].endswith("/evaluate") else "request body"
        if declared is not None and declared.isdigit() and int(declared) > limit:
            detail = f"The {what} is {int(declared):,} bytes; this server accepts at most {limit:,} bytes."
            response = JSONResponse({"detail": detail}, status_code=413)
            return await response(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"The {what} exceeds {limit:,} bytes, the most this server accepts.")
            return message

        await self.app(scope, counted, send)


# ---------------------------------------------------------------- chunk pipeline
class ChunkPipeline:
    """The chunks of one response, requested from the generation deployment a few at a time.

    At most ``prefetch + 1`` chunks are in flight or held, so memory stays
    bounded whatever the size of the response, while the next chunks are
    generated during the encoding and sending of the current one.
    """

    def __init__(self, handle: DeploymentHandle, num_rows: int, chunk_rows: int, conditions, seed: int, prefetch: int):
        self._handle = handle
        self._plan = iter(
            (k, min(chunk_rows, num_rows - k * chunk_rows), k * chunk_rows) for k in range(-(-num_rows // chunk_rows))
        )
        self._conditions = conditions
        self._seed = seed
        self._pending: deque[DeploymentResponse] = deque()
        for _ in range(prefetch + 1):
            self._submit()

    def _submit(self) -> None:
        step = next(self._plan, None)
        if step is not None:
            index, rows, offset = step
            self._pending.append(self._handle.chunk.remote(index, rows, offset, self._conditions, self._seed))

    async def next(self) -> pa.Table | None:
        """The next chunk, ``None`` after the last; raises ``RequestRejected`` if it could not be made."""
        if not self._pending:
            return None
        response = self._pending.popleft()
        self._submit()
        try:
            result = await response
        except Exception as exc:  # noqa: BLE001 - a dead or overloaded replica is a 503, not a crash
            raise RequestRejected(503, f"The generation service failed: {type(exc).__name__}: {exc}") from None
        if isinstance(result, Failure):
            raise result.reject()
        return ipc_to_table(result)

    def cancel(self) -> None:
        while self._pending:
            self._pending.popleft().cancel()


def served_formats(modality: Modality) -> tuple[str, ...]:
    """The formats a model of ``modality`` answers in here: the modality's own, in its order, that have an encoder."""
    return tuple(f for f in modality.formats if f in ENCODERS)


@dataclass(frozen=True)
class SamplePlan:
    """A sample request resolved against its model's modality: what to generate and how to send it."""

    format: str
    conditions: Any
    chunk_rows: int


def plan_sample(model_id: str, body: SampleRequest, modality: Modality, args: AppArgs) -> SamplePlan:
    """Check a sample request against the model's modality before any generation starts.

    The format must be one of the modality's (its first when omitted), a
    one-sample format (png) needs ``num_rows == 1``, and ``num_rows`` must be
    within the modality's limit. ``label`` becomes ``conditions={"label": ...}``;
    the conditions themselves are the model's to check, on the first chunk.
    """
    unit = modality.unit
    formats = served_formats(modality)
    if not formats:
        raise RequestRejected(
            503,
            f"Model {model_id!r} cannot be served: the {modality.name} modality answers in "
            f"{', '.join(modality.formats) or 'no format'}, none of which this server writes ({', '.join(ENCODERS)}).",
        )
    fmt = body.format or formats[0]
    if fmt not in formats:
        raise RequestRejected(
            422,
            f"format {fmt!r} does not fit model {model_id!r}: models of the {modality.name} modality answer in "
            f"{', '.join(formats)}.",
        )
    if ENCODERS[fmt].one_sample and body.num_rows != 1:
        more = [f for f in formats if not ENCODERS[f].one_sample]
        hint = f" Use {' or '.join(map(repr, more))} for more." if more else ""
        raise RequestRejected(422, f"format {fmt!r} returns one {unit}; num_rows is {body.num_rows}.{hint}")
    limit = args.max_rows_for(modality.name)
    if body.num_rows > limit:
        raise RequestRejected(
            422,
            f"num_rows is {body.num_rows:,}; this server generates at most {limit:,} {unit}s per request for "
            f"{modality.name} models. Split the request, or use the sharded sampler (jobs.sample) for bulk output.",
        )
    conditions: Any = body.conditions
    if body.label is not None:
        if body.conditions:
            raise RequestRejected(422, "'label' is short for conditions {'label': ...}: give one or the other, not both.")
        conditions = {"label": body.label}
    return SamplePlan(format=fmt, conditions=conditions, chunk_rows=args.chunk_rows_for(modality.name))


class StreamSlots:
    """A per-replica cap on streamed (larger than one chunk) responses in production.

    Serve does not pace a streamed body by the client: the ingress's ASGI
    ``send`` never blocks and the proxy holds what the client has not read yet
    (serve_apps/README.md, "Streaming and backpressure"). So each stream runs
    to its end at generation speed; the cap bounds how many do so at once.
    Only one event loop touches the counter, so it needs no lock.
    """

    def __init__(self, limit: int, retry_after_s: int):
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.active = 0
        # Set while no stream runs, so that a drain (or a test) can wait for it instead of polling.
        self._idle = asyncio.Event()
        self._idle.set()

    def acquire(self) -> bool:
        if self.active >= self.limit:
            raise RequestRejected(
                503,
                f"This replica is already streaming {self.active} large responses, the most it streams at once "
                f"(max_concurrent_streams={self.limit}); retry in {self.retry_after_s} s, or ask for at most "
                "chunk_rows rows, which are answered without streaming.",
                headers={"Retry-After": str(self.retry_after_s)},
            )
        self.active += 1
        self._idle.clear()
        return True

    def release(self, slot: bool | None) -> None:
        if slot:
            self.active -= 1
            if self.active == 0:
                self._idle.set()

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for every stream of this replica to end; return whether they all did."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except asyncio.TimeoutError:
            return False
        return True

    def stats(self) -> dict[str, int]:
        return {"active_streams": self.active, "max_concurrent_streams": self.limit}


class SlotStreamingResponse(StreamingResponse):
    """A streamed response that frees its stream slot however it ends.

    Released here rather than in the body generator, whose ``finally`` never
    runs if the client leaves before the first chunk is asked for.
    """

    def __init__(self, *args: Any, on_close: Callable[[], None], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


# ---------------------------------------------------------------- the FastAPI app
def _validation_message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for e in errors:
        if e.get("type") == "json_invalid":
            return f"The request body is not valid JSON ({e.get('ctx', {}).get('error', 'decode error')})."
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        got = e.get("input")
        parts.append(f"{where}: {e.get('msg')} (got {json.dumps(got, default=str)[:80]})")
    return "Invalid request: " + "; ".join(parts)


def create_api(service: "SynthAPI") -> FastAPI:
    """The FastAPI application of one ingress replica, bound to its handles and settings."""
    args = service.args
    api = FastAPI(
        title="Synthetic data engine",
        version=API_VERSION,
        description="Generate synthetic rows from trained models and evaluate synthetic tables. "
        "Send `Authorization: Bearer <key>` on every /v1 route when auth is on.",
    )
    api.add_middleware(
        BodyLimit,
        limit_for=lambda path: args.max_upload_bytes if path.endswith("/evaluate") else args.max_request_bytes,
    )

    @api.exception_handler(RequestRejected)
    async def _rejected(_: Request, exc: RequestRejected) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    @api.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        if exc.status_code == 404 and detail == "Not Found":  # no route matched: say what was asked
            detail = f"No route {request.method} {request.scope['path'][:200]}; the routes are listed at /docs."
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.scope['path'][:200]}; the routes are listed at /docs."
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @api.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        return JSONResponse({"detail": _validation_message(errors), "errors": json.loads(json.dumps(errors, default=str))}, 422)

    async def authorize(request: Request) -> None:
        if service.key_digest is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(401, "Missing API key: send 'Authorization: Bearer <key>'.", {"WWW-Authenticate": "Bearer"})
        if not token_matches(token.strip(), service.key_digest):
            raise HTTPException(401, "Invalid API key.", {"WWW-Authenticate": "Bearer"})

    auth = [Depends(authorize)]

    @api.get("/healthz", summary="Liveness check (no key needed)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/v1/models", dependencies=auth, summary="Models in the store")
    async def list_models() -> dict[str, Any]:
        names = await asyncio.to_thread(service.index.names)
        return {"models": [{"id": n, "url": f"/v1/models/{n}"} for n in names]}

    @api.get("/v1/models/{model_id}", dependencies=auth, summary="The model card: modality, formats, columns or classes, training metrics")
    async def describe(model_id: str) -> dict[str, Any]:
        await asyncio.to_thread(service.index.require, model_id)
        handle = service.generator.options(multiplexed_model_id=model_id)
        try:
            result = await handle.describe.remote()
        except Exception as exc:  # noqa: BLE001
            raise RequestRejected(503, f"The generation service failed: {type(exc).__name__}: {exc}") from None
        if isinstance(result, Failure):
            raise result.reject()
        return result

    @api.post(
        "/v1/models/{model_id}/sample",
        dependencies=auth,
        summary="Generate samples (rows, images, ...)",
        response_class=Response,
        responses={200: {"description": "the rows", "content": {"application/json": {}, "text/csv": {}, "application/vnd.apache.parquet": {}, "image/png": {}, "audio/wav": {}, "application/zip": {}}}},
    )
    async def sample(model_id: str, body: SampleRequest) -> Response:
        """Exactly ``num_rows`` samples meeting ``conditions``, in a format of the model's modality. Up to
        the modality's ``chunk_rows`` samples come in one response; more are streamed chunk by chunk
        (``X-Synth-Num-Rows`` says how many to expect)."""
        await asyncio.to_thread(service.index.require, model_id)
        modality = await asyncio.to_thread(service.index.modality, model_id)
        plan = plan_sample(model_id, body, modality, args)
        seed = body.seed if body.seed is not None else secrets.randbits(63)
        handle = service.generator.options(multiplexed_model_id=model_id)
        chunk_rows = plan.chunk_rows
        slot = service.streams.acquire() if body.num_rows > chunk_rows else None  # 503 when all are taken
        try:
            pipeline = ChunkPipeline(handle, body.num_rows, chunk_rows, plan.conditions, seed, args.prefetch_chunks)
        except BaseException:
            service.streams.release(slot)
            raise
        encoder = make_encoder(plan.format)
        headers = {"X-Synth-Seed": str(seed), "X-Synth-Num-Rows": str(body.num_rows), "X-Synth-Model": model_id}
        if plan.format != "json":
            headers["Content-Disposition"] = f'attachment; filename="{model_id}.{plan.format}"'
        try:
            first = await pipeline.next()  # errors (bad condition, failed load) still get their status code
            try:
                encoder.check(first)  # before any byte is sent: a mismatch is still a status code
            except FormatMismatch as exc:
                raise RequestRejected(422, f"Model {model_id!r} cannot answer in {plan.format!r}: {exc}.") from None
        except BaseException:
            pipeline.cancel()
            service.streams.release(slot)
            raise
        if body.num_rows <= chunk_rows:
            content = await asyncio.to_thread(lambda: encoder.begin() + encoder.encode(first) + encoder.end())
            return Response(content, media_type=encoder.media_type, headers=headers)

        async def stream() -> AsyncIterator[bytes]:
            table = first
            try:
                yield encoder.begin()
                while table is not None:
                    yield await asyncio.to_thread(encoder.encode, table)
                    table = await pipeline.next()
                yield await asyncio.to_thread(encoder.end)
            except RequestRejected as exc:
                # Headers are gone: breaking the connection is the only way left to say the body is incomplete.
                logger.error("streamed sample of %r aborted: %s", model_id, exc.detail)
                raise
            finally:
                pipeline.cancel()

        return SlotStreamingResponse(
            stream(), media_type=encoder.media_type, headers=headers, on_close=lambda: service.streams.release(slot)
        )

    @api.get("/v1/stats", dependencies=auth, summary="Streams in progress on this ingress replica, models held by a generation replica")
    async def stats(
        wait_idle_s: float = Query(
            default=0, ge=0, le=60,
            description="first wait up to this many seconds for this replica's streams to end (a drain, a test)",
        ),
    ) -> dict[str, Any]:
        if wait_idle_s:
            await service.streams.wait_idle(wait_idle_s)
        try:
            generator = await service.generator.stats.remote()
        except Exception as exc:  # noqa: BLE001
            raise RequestRejected(503, f"The generation service failed: {type(exc).__name__}: {exc}") from None
        return {"ingress": service.streams.stats(), "generator": generator}

    @api.post(
        "/v1/evaluate",
        dependencies=auth,
        summary="Evaluation report of a synthetic table against the real one",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": EvaluateRequest.model_json_schema()},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["real", "synthetic"],
                            "properties": {
                                **{f: {"type": "string", "format": "binary", "description": "upload, or a data-root path as text"} for f in TABLE_FIELDS},
                                "target": {"type": "string"},
                                "format": {"type": "string", "enum": ["json", "html"]},
                            },
                        }
                    },
                },
            }
        },
    )
    async def evaluate(request: Request) -> Response:
        """Tables by reference (JSON body: paths under the data root) or uploaded (multipart form:
        files ``real``, ``synthetic`` and optionally ``holdout``). ``format=html`` returns the HTML report."""
        options, tables = await _read_evaluate_request(request)
        html = options.format == "html" or "text/html" in request.headers.get("accept", "")
        try:
            result = await service.evaluator.evaluate.remote(
                tables, target=options.target, privacy=options.privacy, detection=options.detection, html=html
            )
        except Exception as exc:  # noqa: BLE001
            raise RequestRejected(503, f"The evaluation service failed: {type(exc).__name__}: {exc}") from None
        if isinstance(result, Failure):
            raise result.reject()
        if html:
            return HTMLResponse(result["html"])
        return Response(result["json"], media_type="application/json")

    @api.post("/v1/generate", dependencies=auth, summary="Run a requirement spec: train or load, sample, evaluate, write under outputs_dir")
    async def generate_dataset(request: Request) -> dict[str, Any]:
        """The body is a requirement spec whose ``model_path`` is a model id, ``data`` a path under the data root and
        ``output.path`` a path under ``outputs_dir``; the answer lists the files written and the data card."""
        from serve_apps.generate import run_generate, server_spec

        if args.outputs_dir is None:
            raise RequestRejected(404, "This server writes no data sets: start it with 'outputs_dir' to enable /v1/generate.")
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RequestRejected(422, f"The request body is not valid JSON ({exc}).") from None
        spec = server_spec(body, models_dir=args.models_dir, data_root=args.data_root, outputs_dir=args.outputs_dir)
        return await asyncio.to_thread(run_generate, spec, args.outputs_dir)

    return api


async def _read_evaluate_request(request: Request) -> tuple[EvaluateRequest, dict[str, TableInput]]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            payload = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RequestRejected(422, f"The request body is not valid JSON ({exc}).") from None
        try:
            options = EvaluateRequest.model_validate(payload)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False)) from None
        refs = {f: getattr(options, f) for f in TABLE_FIELDS if getattr(options, f) is not None}
        return options, {f: TableInput(field=f, reference=r) for f, r in refs.items()}
    if content_type == "multipart/form-data":
        form = await request.form(max_files=len(TABLE_FIELDS), max_fields=16)
        unknown = sorted(set(form.keys()) - {*TABLE_FIELDS, "target", "format", "privacy", "detection"})
        if unknown:
            raise RequestRejected(422, f"Unknown form field(s) {unknown}; expected real, synthetic, holdout, target, format.")
        tables: dict[str, TableInput] = {}
        fields: dict[str, Any] = {}
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name not in TABLE_FIELDS:
                    raise RequestRejected(422, f"Form field {name!r} must be text, not a file.")
                tables[name] = TableInput(field=name, data=await value.read(), filename=value.filename)
            elif name in TABLE_FIELDS:
                tables[name] = TableInput(field=name, reference=value)
            else:
                fields[name] = value if name in ("target", "format") else value.strip().lower() in ("1", "true", "yes")
        for needed in ("real", "synthetic"):
            if needed not in tables:
                raise RequestRejected(422, f"The form has no {needed!r} table: upload a file or give a data-root path.")
        refs = {f: (t.reference if t.reference is not None else "<upload>") for f, t in tables.items()}
        try:
            options = EvaluateRequest.model_validate({**refs, **fields})
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False)) from None
        return options, tables
    raise RequestRejected(
        415, f"Send the evaluation request as application/json (paths) or multipart/form-data (uploads); got {content_type or 'no content type'!r}."
    )


# ---------------------------------------------------------------- deployments and builder
@serve.deployment(name="SynthAPI")
@serve.ingress()
class SynthAPI:
    """The ingress: validation, limits and auth, in front of the generation and evaluation deployments."""

    def __init__(self, generator: DeploymentHandle, evaluator: DeploymentHandle, *, args: AppArgs, key_digest: str | None):
        register_modalities(args.modalities)  # the ingress looks each model's modality up in the registry
        self.generator = generator
        self.evaluator = evaluator
        self.args = args
        self.key_digest = key_digest
        self.index = StoreIndex(args.models_dir)
        self.streams = StreamSlots(args.max_concurrent_streams, args.stream_retry_after_s)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_api(self)


def _check_locations(args: AppArgs) -> None:
    if "://" not in args.models_dir or args.models_dir.startswith("file://"):
        root = Path(args.models_dir.removeprefix("file://")).expanduser()
        if not root.is_dir():
            raise ServeConfigError(f"models_dir {args.models_dir!r} is not a folder: point it at the model store.")
    if args.data_root is not None:
        if "://" in args.data_root:
            raise ServeConfigError(f"data_root {args.data_root!r} must be a local folder (uploads work for any data).")
        if not Path(args.data_root).expanduser().is_dir():
            raise ServeConfigError(f"data_root {args.data_root!r} is not a folder.")
    if args.outputs_dir is not None:
        Path(args.outputs_dir).expanduser().mkdir(parents=True, exist_ok=True)


def build_app(args: AppArgs) -> serve.Application:
    """The application: ingress -> (generator, evaluator), configured by ``args``.

    Reads the API key here (when auth is on) and hands the replicas only its
    digest; imports the plugin ``modalities`` here too, so that a bad entry
    fails the build rather than every replica.
    """
    if not isinstance(args, AppArgs):
        args = AppArgs.model_validate(args)
    digest = key_digest(read_api_key(args)) if args.auth else None
    _check_locations(args)
    check_modalities(args)
    generator = Generator.options(**args.generator.serve_options(default_max_ongoing=32)).bind(
        models_dir=args.models_dir,
        max_models_per_replica=args.max_models_per_replica,
        failed_load_retry_s=args.failed_load_retry_s,
        modalities=args.modalities,
    )
    evaluator = Evaluator.options(**args.evaluator.serve_options(default_max_ongoing=2)).bind(
        data_root=args.data_root, max_rows=args.max_eval_rows, max_bytes=args.max_eval_bytes, modalities=args.modalities
    )
    ingress = SynthAPI.options(**args.ingress.serve_options(default_max_ongoing=128))
    return ingress.bind(generator, evaluator, args=args, key_digest=digest)
