"""The HTTP API over real HTTP against a real ``serve.run`` on the shared Ray instance.

One Serve application serves the whole module (tables, images, and a plugin
modality the app has never heard of, ``tests/serve_plugin.py``); tests of
single pieces need no server. Nothing here sleeps to wait out a cache or polls:
the store's clock is injected in its own test, and streams are awaited with
``/v1/stats?wait_idle_s``.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.client import ServiceError, SynthClient
from engine.images.synthesizer import DCGAN, ImageSynthesizer
from engine.images.io import decode_image
from engine.tabular.synthesizer import TabularSynthesizer
from tests.conftest import SHARED_DATA
from tests.serve_plugin import MODALITY as TONE_MODALITY
from tests.serve_plugin import ToneSynthesizer
from tests.toy_modality import TOY, ToySequenceSynthesizer

KEY = "test-key-" + "x" * 24
KEY_ENV = "SYNTH_TEST_SERVE_KEY"
CHUNK = 2_000
MAX_ROWS = 400_000
MAX_UPLOAD = 300_000
MAX_EVAL_ROWS = 5_000
MAX_EVAL_BYTES = 1_000_000
TONE_CHUNK = 4  # the plugin modality's own chunk size: its answers above 4 tones are streamed
MAX_TONES = 50
BAD_MANIFEST = b"{ not json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(ray_session, adult_small, tmp_path_factory):
    """Good models of three modalities and two broken ones in a store, served once for the whole module."""
    from ray import serve

    from engine.core.registry import register_modality, unregister_modality
    from serve_apps.app import build_app

    root = tmp_path_factory.mktemp("serve")
    store, data = root / "models", root / "data"
    data.mkdir()
    TabularSynthesizer("gaussian_copula").fit(adult_small, seed=0).save(store / "adult-gc")
    TabularSynthesizer("gaussian_copula").fit(adult_small.iloc[:1000, :8], seed=1).save(store / "adult-gc-narrow")
    TabularSynthesizer("ctgan").fit(adult_small, epochs=1, batch_size=500, show_progress=False).save(store / "adult-ctgan")
    with np.load(SHARED_DATA / "images" / "mnist.npz") as z:
        digits, digit_labels = z["x_train"][:128], z["y_train"][:128]
    _untrained_digits(store / "digits", digits, digit_labels)
    _untrained_clips(store / "clips")
    _untrained_series(store / "devices")
    _untrained_texts(store / "reviews")
    register_modality(TONE_MODALITY)  # this process saves one; the replicas register it from the app's 'modalities'
    ToneSynthesizer().fit({"low": 220.0, "high": 880.0}).save(store / "tones")
    register_modality(TOY)  # the toy sequence modality of tests/test_modality_plugin.py, trained by the loop
    _untrained_toy_sequences(store / "sequences")
    shutil.copytree(store / "adult-gc", store / "broken")
    (store / "broken" / "weights.safetensors").write_bytes(b"not safetensors at all")
    # In the store from the start, so that the ingress lists it without waiting for a listing refresh.
    shutil.copytree(store / "adult-gc", store / "bad-manifest")
    (store / "bad-manifest" / "manifest.json").write_bytes(BAD_MANIFEST)
    adult_small.iloc[:300].to_csv(data / "real.csv", index=False)
    adult_small.iloc[300:600].to_csv(data / "synthetic.csv", index=False)

    os.environ[KEY_ENV] = KEY
    if serve.status().applications:  # another module's Serve instance: start ours on our own port
        serve.shutdown()
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    app = build_app(
        {
            "models_dir": str(store),
            "data_root": str(data),
            "outputs_dir": str(root / "outputs"),
            "api_key_env": KEY_ENV,
            "chunk_rows": {"default": CHUNK, "tone": TONE_CHUNK},  # images keep the shipped 256
            "max_rows_per_request": {"default": MAX_ROWS, "tone": MAX_TONES},
            "modalities": ["tests.serve_plugin:MODALITY", "tests.toy_modality:TOY"],
            "max_request_bytes": 4096,
            "max_upload_bytes": MAX_UPLOAD,
            "max_models_per_replica": 2,  # fewer than the good models: the tests cycle through evictions
            "max_eval_rows": MAX_EVAL_ROWS,
            "max_eval_bytes": MAX_EVAL_BYTES,
            "max_concurrent_streams": 1,  # the streaming tests run one at a time; the cap test needs only one
            "generator": {"num_cpus": 0.5, "max_ongoing_requests": 8},
            "evaluator": {"num_cpus": 0.25},
            "ingress": {"num_cpus": 0.25},
        }
    )
    serve.run(app, name="synth-test", route_prefix="/")
    base = f"http://127.0.0.1:{port}"
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=120)
    try:
        yield {"base": base, "http": http, "store": store, "data": data, "outputs": root / "outputs"}
    finally:
        http.close()
        serve.shutdown()
        os.environ.pop(KEY_ENV, None)
        unregister_modality(TONE_MODALITY.name)
        unregister_modality(TOY.name)


def _untrained_series(path) -> None:
    """A time-series model saved as initialised (no training run), on the devices panel of tests/test_timeseries.py."""
    from engine.timeseries.synthesizer import TimeSeriesSynthesizer
    from engine.timeseries.transforms import SequenceEncoder
    from tests.test_timeseries import _panel

    synth = TimeSeriesSynthesizer(model="timegan", model_config={"hidden_dim": 8, "num_layers": 1}, entity_column="device",
                                  time_column="timestamp", static_columns=["site"])
    encoder = SequenceEncoder(entity_column="device", time_column="timestamp", static_columns=["site"]).fit(_panel())
    synth._encoder, synth._model = encoder, synth.model_class()(synth._config_object(), encoder.layout)
    synth.save(path)


def _untrained_texts(path) -> None:
    """A label-conditional GPT-2 saved as initialised (its tokenizer learned, no training run), on the corpus of tests/test_text.py."""
    from engine.text.memorization import MemorizationGuard
    from engine.text.synthesizer import TextSynthesizer
    from engine.text.tokenization import TextTokenizer
    from engine.text.transforms import TextLayout
    from tests.test_text import TINY, _corpus

    corpus = _corpus()
    synth = TextSynthesizer(model_config=TINY, max_new_tokens=12)
    tok = TextTokenizer.train(list(corpus["text"]), TINY["vocab_size"], {"label": ["a", "b"]})
    layout = TextLayout(tok.vocab_size, 24, tok.pad_id, tok.bos_id, tok.eos_id, 2, None, True)
    synth._tokenizer, synth._model = tok, synth.model_class()(synth._config_object(), layout)
    synth.text_column_, synth.label_combos_ = "text", [(["a"], 32), (["b"], 32)]
    synth.guard_ = MemorizationGuard.fit(list(corpus["text"]), synth.memorization_ngram)
    synth.save(path)


def _untrained_digits(path, digits: np.ndarray, labels: np.ndarray) -> None:
    """A class-conditional DCGAN saved as initialised (no training run): the Serve path is tested, not the drawing."""
    from engine.images.transforms import ImagePreprocessor

    synth = DCGAN(latent_dim=8, generator_width=8, discriminator_width=8)
    pre = ImagePreprocessor(synth.image_size, synth.channels)
    image_set = pre.prepare(digits, labels)
    pre.fit(image_set)
    synth._preprocessor, synth._model = pre, synth.model_class()(synth._config_object(), pre.layout)
    synth.class_frequencies_ = np.bincount(image_set.labels, minlength=pre.layout.num_classes) / len(image_set.labels)
    synth.save(path)


def _untrained_toy_sequences(path) -> None:
    """The toy sequence modality's model saved as initialised (its training by the loop is tested in its own file)."""
    from tests.toy_modality import SequenceLayout, SequenceScaler

    x = np.random.default_rng(0).normal(size=(64, 5, 2))
    synth = ToySequenceSynthesizer()
    synth._scaler = SequenceScaler().fit(x)
    synth._model = synth.model_class()(synth._config_object(), SequenceLayout(steps=5, channels=2))
    synth.save(path)


def _untrained_clips(path) -> None:
    """An audio model saved as initialised (no training run): what is tested is the Serve path, not the sound."""
    from engine.audio.io import AudioSet
    from engine.audio.synthesizer import AudioSynthesizer
    from engine.audio.transforms import AudioPreprocessor

    synth = AudioSynthesizer(sample_rate=8000, duration=0.064, model_config={"model_dim": 4, "layers": 2, "latent_dim": 8})
    pre = AudioPreprocessor(8000, 0.064).fit(AudioSet(np.full((2, 512), 0.5, np.float32), 8000, np.array([0, 1]), ["no", "yes"]))
    synth._preprocessor, synth._model = pre, synth.model_class()(synth._config_object(), pre.layout)
    synth.class_frequencies_ = np.array([0.5, 0.5])
    synth.save(path)


@pytest.fixture(scope="module")
def client(served):
    with SynthClient(served["base"], api_key=KEY) as c:
        yield c


def _local(served, model_id: str) -> TabularSynthesizer:
    return TabularSynthesizer.load(served["store"] / model_id)


def _expected(synth: TabularSynthesizer, num_rows: int, seed: int, conditions=None) -> pd.DataFrame:
    """What the server must send: chunk k is sample(seed, stream=k, row_offset=k*CHUNK)."""
    parts = [
        synth.sample(min(CHUNK, num_rows - off), conditions=conditions, seed=seed, stream=k, row_offset=off)
        for k, off in enumerate(range(0, num_rows, CHUNK))
    ]
    return pd.concat(parts, ignore_index=True)


def _parquet(content: bytes) -> pd.DataFrame:
    return pq.read_table(pa.py_buffer(content)).to_pandas()


# ------------------------------------------------------------------ routes and auth
def test_healthz_and_openapi_need_no_key(served):
    assert httpx.get(served["base"] + "/healthz").json() == {"status": "ok"}
    spec = httpx.get(served["base"] + "/openapi.json").json()
    assert {"/healthz", "/v1/models", "/v1/models/{model_id}", "/v1/models/{model_id}/sample", "/v1/evaluate"} <= set(spec["paths"])


@pytest.mark.parametrize("path", ["/v1/models", "/v1/models/adult-gc"])
def test_v1_routes_need_the_key(served, path):
    missing = httpx.get(served["base"] + path)
    assert missing.status_code == 401 and "Missing API key" in missing.json()["detail"]
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = httpx.get(served["base"] + path, headers={"Authorization": "Bearer " + "y" * 32})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "Invalid API key."
    post = httpx.post(served["base"] + "/v1/models/adult-gc/sample", json={"num_rows": 1})
    assert post.status_code == 401


def test_generate_runs_a_spec_under_outputs_dir(served):
    spec = {"model_path": "adult-gc", "num_rows": 20, "seed": 1, "mixture": {"sex": {"Female": 0.25, "Male": 0.75}},
            "output": {"path": "run1/rows.parquet"}}
    r = served["http"].post("/v1/generate", json=spec)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["files"] == ["run1/rows.parquet"] and body["card"] == "run1/dataset_card.json" and body["num_rows"] == 20
    rows = pd.read_parquet(served["outputs"] / "run1" / "rows.parquet")
    assert rows["sex"].value_counts().to_dict() == {" Male": 15, " Female": 5}
    assert body["dataset_card"]["files"][0]["sha256"] == hashlib.sha256((served["outputs"] / "run1" / "rows.parquet").read_bytes()).hexdigest()
    escape = served["http"].post("/v1/generate", json={**spec, "output": {"path": "../escaped.parquet"}})
    assert escape.status_code == 422 and "output.path" in escape.text
    assert served["http"].post("/v1/generate", json={**spec, "num_rows": 0}).status_code == 422


def test_models_lists_the_store(client):
    assert client.models() == [
        "adult-ctgan", "adult-gc", "adult-gc-narrow", "bad-manifest", "broken", "clips", "devices", "digits", "reviews", "sequences", "tones"
    ]


def test_model_card(client, adult_small):
    card = client.model("adult-gc")
    assert card["model"] == "gaussian_copula" and card["num_training_rows"] == len(adult_small)
    assert card["id"] == "adult-gc" and card["modality"] == "table" and card["formats"] == ["json", "csv", "parquet"]
    cols = {c["name"]: c for c in card["columns"]}
    assert list(cols) == list(adult_small.columns)
    assert cols["income"]["kind"] == "categorical" and sorted(cols["income"]["categories"]) == [" <=50K", " >50K"]
    assert cols["age"]["range"] == [adult_small["age"].min(), adult_small["age"].max()]
    ctgan = client.model("adult-ctgan")
    assert ctgan["metrics"]["epochs_trained"] == 1 and ctgan["metrics"]["last_epoch"]


# ------------------------------------------------------------------ sampling
@pytest.mark.parametrize("fmt", ["json", "csv", "parquet"])
def test_sample_formats_meet_conditions(client, fmt):
    conditions = {"income": ">50K", "age": {"between": [30, 50]}}  # label matched without its leading space
    rows = client.sample("adult-gc", 300, conditions=conditions, seed=5, format=fmt)
    assert len(rows) == 300
    assert (rows["income"].str.strip() == ">50K").all()
    assert rows["age"].between(30, 50).all()


def test_same_seed_same_rows(served, client):
    a = client.sample("adult-gc", 500, seed=11, format="parquet")
    b = client.sample("adult-gc", 500, seed=11, format="parquet")
    c = client.sample("adult-gc", 500, seed=12, format="parquet")
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    pd.testing.assert_frame_equal(a, _expected(_local(served, "adult-gc"), 500, 11), check_dtype=False)


def test_seed_is_returned_when_not_given(served):
    http = served["http"]
    first = http.post("/v1/models/adult-gc/sample", json={"num_rows": 50, "format": "csv"})
    seed = int(first.headers["x-synth-seed"])
    again = http.post("/v1/models/adult-gc/sample", json={"num_rows": 50, "format": "csv", "seed": seed})
    assert first.content == again.content


def test_large_request_is_streamed_exactly_and_deterministically(served):
    n = 10 * CHUNK + 123
    body = {"num_rows": n, "seed": 3, "format": "parquet", "conditions": {"sex": "Female"}}
    with served["http"].stream("POST", "/v1/models/adult-gc/sample", json=body) as r:
        assert r.status_code == 200
        assert r.headers.get("transfer-encoding") == "chunked" and "content-length" not in r.headers
        assert r.headers["x-synth-num-rows"] == str(n)
        content = r.read()
    rows = _parquet(content)
    assert len(rows) == n and (rows["sex"] == " Female").all()
    assert pq.ParquetFile(pa.py_buffer(content)).num_row_groups == 11  # one row group per chunk
    expected = _expected(_local(served, "adult-gc"), n, 3, conditions={"sex": " Female"})
    pd.testing.assert_frame_equal(rows, expected, check_dtype=False)
    again = served["http"].post("/v1/models/adult-gc/sample", json=body)
    assert again.content == content


def _replica_pid(deployment: str) -> int:
    """PID of this module's replica, found by the process title Ray gives it (no dashboard needed)."""
    import psutil

    title = f"ServeReplica:synth-test:{deployment}"
    for proc in psutil.process_iter(["cmdline", "username"]):
        if proc.info["username"] == psutil.Process().username() and title in " ".join(proc.info["cmdline"] or []):
            return proc.pid
    raise AssertionError(f"no process titled {title!r}")


def test_streaming_memory_stays_bounded(served):
    """A CSV response much larger than a chunk never sits whole in the ingress replica."""
    import psutil

    proc = psutil.Process(_replica_pid("SynthAPI"))
    # Warm up first: the first streamed CSVs import and allocate what every later one reuses
    # (measured: ~20 MB the first time, a few MB afterwards whatever the size).
    warm = served["http"].post("/v1/models/adult-gc/sample", json={"num_rows": MAX_ROWS // 4, "seed": 2, "format": "csv"})
    assert warm.status_code == 200
    baseline = proc.memory_info().rss
    peak = [baseline]
    done = threading.Event()

    def watch():
        while not done.wait(0.02):  # sample every 20 ms; returns at once when the stream is done
            peak[0] = max(peak[0], proc.memory_info().rss)

    watcher = threading.Thread(target=watch)
    watcher.start()
    n, size, lines = MAX_ROWS, 0, 0
    try:
        with served["http"].stream("POST", "/v1/models/adult-gc/sample", json={"num_rows": n, "seed": 1, "format": "csv"}) as r:
            assert r.status_code == 200
            for part in r.iter_bytes():
                size += len(part)
                lines += part.count(b"\n")
    finally:
        done.set()
        watcher.join()
    assert lines == n + 1  # header + exactly n rows
    growth = peak[0] - baseline
    assert size > 30_000_000
    print(f"ingress RSS growth {growth:,} bytes while streaming {size:,} bytes")
    # A response held whole would grow the replica by at least its size; the allocator's own growth
    # after the warm-up varies from run to run (10 and 14 MB in two runs of 54 MB), so the bound is half the size.
    assert growth < size / 2, f"ingress grew by {growth:,} bytes while streaming {size:,}"


def test_two_models_side_by_side(served):
    gc, narrow = _local(served, "adult-gc"), _local(served, "adult-gc-narrow")
    jobs = [("adult-gc", gc, 15), ("adult-gc-narrow", narrow, 15), ("adult-ctgan", None, 15)] * 2

    def run(job):
        model_id, _, seed = job
        r = served["http"].post(f"/v1/models/{model_id}/sample", json={"num_rows": 200, "seed": seed, "format": "parquet"})
        assert r.status_code == 200, r.text
        return _parquet(r.content)

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(run, jobs))
    for (model_id, synth, seed), rows in zip(jobs, results):
        assert len(rows) == 200
        if synth is not None:
            pd.testing.assert_frame_equal(rows, _expected(synth, 200, seed), check_dtype=False)
    assert list(results[1].columns) == list(narrow.schema_.names) and len(results[1].columns) == 8
    assert len(results[2].columns) == 15


def test_32_concurrent_clients(served):
    gc = _local(served, "adult-gc")

    def run(i: int):
        model_id = "adult-ctgan" if i % 4 == 0 else "adult-gc"
        fmt = ("json", "csv", "parquet")[i % 3]
        with SynthClient(served["base"], api_key=KEY) as c:
            return i, model_id, c.sample(model_id, 100 + i, seed=i, format=fmt)

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(run, range(32)))
    assert len(results) == 32
    for i, model_id, rows in results:
        assert len(rows) == 100 + i
        if model_id == "adult-gc" and i % 3 == 2:  # parquet keeps dtypes: compare with in-process rows
            pd.testing.assert_frame_equal(rows, _expected(gc, 100 + i, i), check_dtype=False)


# ------------------------------------------------------------------ errors
def test_unknown_model_is_404(served):
    r = served["http"].post("/v1/models/no-such-model/sample", json={"num_rows": 5})
    assert r.status_code == 404
    assert "No model 'no-such-model'" in r.json()["detail"] and "'adult-gc'" in r.json()["detail"]
    assert served["http"].get("/v1/models/no-such-model").status_code == 404


@pytest.mark.parametrize("model_id", ["bad..id", "-dash", "a%20b", "x" * 200, ".hidden"])
def test_invalid_model_id_is_422(served, model_id):
    r = served["http"].post(f"/v1/models/{model_id}/sample", json={"num_rows": 5})
    assert r.status_code == 422
    assert "Invalid model id" in r.json()["detail"]


@pytest.mark.parametrize(
    "path, status, fragment",
    [
        ("/v1/models/..%2F..%2Fetc/sample", 404, "No route POST /v1/models/../../etc/sample"),
        ("/v1/models/%2E%2E/sample", 422, "Invalid model id '..'"),
        ("/v1/models/%2E%2E", 422, "Invalid model id '..'"),
    ],
)
def test_path_traversal_never_reaches_a_file(served, path, status, fragment):
    r = served["http"].post(path, json={"num_rows": 5}) if path.endswith("/sample") else served["http"].get(path)
    assert r.status_code == status, r.text
    assert fragment in r.json()["detail"]


def test_unknown_column_and_category_are_422_listing_what_is_valid(client):
    with pytest.raises(ServiceError) as exc:
        client.sample("adult-gc", 5, conditions={"incme": ">50K"})
    assert exc.value.status == 422 and "Unknown column 'incme'" in exc.value.detail and "'income'" in exc.value.detail
    with pytest.raises(ServiceError) as exc:
        client.sample("adult-gc", 5, conditions={"income": "rich"})
    assert exc.value.status == 422 and "'rich'" in exc.value.detail and "' >50K'" in exc.value.detail


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"num_rows": 0}, "num_rows"),
        ({"num_rows": "ten"}, "num_rows"),
        ({"num_rows": 5, "seed": -1}, "seed"),
        ({"num_rows": 5, "format": "xml"}, "format"),
        ({"num_rows": 5, "colour": "red"}, "colour"),
        ({}, "num_rows"),
    ],
)
def test_bad_sample_bodies_are_422(served, body, fragment):
    r = served["http"].post("/v1/models/adult-gc/sample", json=body)
    assert r.status_code == 422
    assert fragment in r.json()["detail"]


def test_malformed_json_is_422(served):
    r = served["http"].post("/v1/models/adult-gc/sample", content=b'{"num_rows": 5,', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["detail"]


def test_row_limit_is_422(served):
    r = served["http"].post("/v1/models/adult-gc/sample", json={"num_rows": MAX_ROWS + 1})
    assert r.status_code == 422 and f"at most {MAX_ROWS:,} rows" in r.json()["detail"]


def test_oversized_bodies_are_413(served):
    big = {"num_rows": 5, "conditions": {"income": "x" * 5000}}
    r = served["http"].post("/v1/models/adult-gc/sample", json=big)
    assert r.status_code == 413 and "at most 4,096 bytes" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit is counted as the body arrives
        yield b'--zz\r\nContent-Disposition: form-data; name="real"; filename="r.csv"\r\n\r\n'
        for _ in range(10):
            yield b"a,b\n" * 10_000

    r = served["http"].post("/v1/evaluate", content=chunks(), headers={"content-type": "multipart/form-data; boundary=zz"})
    assert r.status_code == 413 and "exceeds 300,000 bytes" in r.json()["detail"]
    r = served["http"].post("/v1/evaluate", files={"real": ("r.csv", b"a\n" * MAX_UPLOAD), "synthetic": ("s.csv", b"a\n1\n")})
    assert r.status_code == 413 and "at most 300,000 bytes" in r.json()["detail"]


def test_failing_load_is_503_and_other_models_keep_working(served, client):
    for _ in range(2):  # the second answer comes from the replica's memory of the failure
        r = served["http"].post("/v1/models/broken/sample", json={"num_rows": 5})
        assert r.status_code == 503
        assert "Model 'broken' could not be loaded" in r.json()["detail"] and "weights.safetensors" in r.json()["detail"]
    assert served["http"].get("/v1/models/broken").status_code == 503
    assert len(client.sample("adult-gc", 10, seed=1)) == 10
    assert httpx.get(served["base"] + "/healthz").status_code == 200


# ------------------------------------------------------------------ evaluation
def test_evaluate_by_reference(client):
    report = client.evaluate("real.csv", "synthetic.csv", target="income")
    assert 0.0 <= report["similarity_score"] <= 1.0
    assert report["details"]["rows"] == {"real": 300, "synthetic": 300, "holdout": 0}


def test_evaluate_uploads_and_html(client, adult_small):
    page = client.evaluate(adult_small.iloc[:300], adult_small.iloc[300:600], html=True)
    assert page.lstrip().lower().startswith("<!doctype html") or "<html" in page[:500].lower()
    csv_bytes = adult_small.iloc[300:600].to_csv(index=False).encode()
    report = client.evaluate("real.csv", csv_bytes)  # one by reference, one uploaded
    assert report["details"]["rows"]["synthetic"] == 300


@pytest.mark.parametrize(
    "payload, status, fragment",
    [
        ({"real": "../real.csv", "synthetic": "synthetic.csv"}, 422, "without '..'"),
        ({"real": "/etc/passwd", "synthetic": "synthetic.csv"}, 422, "relative to the server's data root"),
        ({"real": "missing.csv", "synthetic": "synthetic.csv"}, 404, "no file or folder 'missing.csv'"),
        ({"real": "real.csv"}, 422, "synthetic"),
        ({"real": "real.csv", "synthetic": "synthetic.csv", "target": "nope"}, 422, "'nope'"),
    ],
)
def test_evaluate_errors(served, payload, status, fragment):
    r = served["http"].post("/v1/evaluate", json=payload)
    assert r.status_code == status, r.text
    assert fragment in r.json()["detail"]


def test_evaluate_rejects_unreadable_uploads_and_other_content_types(served):
    r = served["http"].post("/v1/evaluate", files={"real": ("r.parquet", b"PAR1 garbage"), "synthetic": ("s.csv", b"a\n1\n")})
    assert r.status_code == 422, r.text
    assert "'real'" in r.json()["detail"] and "r.parquet" in r.json()["detail"]
    r = served["http"].post("/v1/evaluate", content=b"real=a", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["detail"]


# ------------------------------------------------------------------ pieces without a server
def test_encoders_join_chunks_into_one_document():
    from serve_apps.formats import make_encoder

    chunks = [pa.table({"a": [1, 2], "b": ["x", None]}), pa.table({"a": [3], "b": ["z"]})]
    out = {}
    for fmt in ("json", "csv", "parquet"):
        enc = make_encoder(fmt)
        out[fmt] = enc.begin() + b"".join(enc.encode(t) for t in chunks) + enc.end()
    assert json.loads(out["json"]) == [{"a": 1, "b": "x"}, {"a": 2, "b": None}, {"a": 3, "b": "z"}]
    assert out["csv"].decode().splitlines() == ['"a","b"', '1,"x"', "2,", '3,"z"']
    assert pq.read_table(io.BytesIO(out["parquet"])).to_pydict() == {"a": [1, 2, 3], "b": ["x", None, "z"]}


def test_api_key_resolution(tmp_path, monkeypatch):
    from serve_apps.config import AppArgs, ServeConfigError, read_api_key

    monkeypatch.delenv("SYNTH_TEST_NO_SUCH_KEY", raising=False)
    args = AppArgs(models_dir=str(tmp_path), api_key_env="SYNTH_TEST_NO_SUCH_KEY")
    with pytest.raises(ServeConfigError, match="no API key was found"):
        read_api_key(args)
    key_file = tmp_path / "key"
    key_file.write_text("k" * 20 + "\n")
    assert read_api_key(args.model_copy(update={"api_key_file": str(key_file)})) == "k" * 20
    monkeypatch.setenv("SYNTH_TEST_NO_SUCH_KEY", "short")
    with pytest.raises(ServeConfigError, match="at least 16"):
        read_api_key(args)


def test_cli_serve_refuses_to_start_without_a_key(tmp_path, monkeypatch, capsys):
    from engine.cli import main

    monkeypatch.delenv("SYNTH_TEST_NO_SUCH_KEY", raising=False)
    assert main(["serve", "--models-dir", str(tmp_path), "--api-key-env", "SYNTH_TEST_NO_SUCH_KEY"]) == 2
    assert "no API key was found" in capsys.readouterr().err
    assert main(["serve", "--models-dir", str(tmp_path / "nope"), "--no-auth"]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_image_model_card_lists_classes_and_formats(served):
    card = served["http"].get("/v1/models/digits").json()
    assert card["modality"] == "image" and card["image"] == {"height": 28, "width": 28, "channels": 1}
    assert card["classes"] == [str(i) for i in range(10)]
    assert card["formats"] == ["zip", "parquet", "png"]


def test_image_model_answers_zip_png_and_parquet_as_the_local_model_does(served):
    import zipfile

    local = ImageSynthesizer.load(served["store"] / "digits")
    expected = local.sample(12, labels="7", seed=4)
    r = served["http"].post("/v1/models/digits/sample", json={"num_rows": 12, "label": "7", "seed": 4, "format": "zip"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        names = archive.namelist()
        assert names == [f"{i:06d}_7.png" for i in range(12)]
        got = np.stack([decode_image(archive.read(n)) for n in names])
    assert np.array_equal(got, expected.images)

    one = served["http"].post("/v1/models/digits/sample", json={"num_rows": 1, "label": 3, "seed": 1, "format": "png"})
    assert one.headers["content-type"] == "image/png"
    assert np.array_equal(decode_image(one.content), local.sample(1, labels=3, seed=1).images[0])

    table = pq.read_table(io.BytesIO(served["http"].post(
        "/v1/models/digits/sample", json={"num_rows": 5, "label": "2", "seed": 0, "format": "parquet"}).content))
    assert table.num_rows == 5 and set(table.column("label").to_pylist()) == {2}


def test_audio_model_answers_a_zip_of_wavs_and_one_wav_as_the_local_model_does(served):
    import zipfile

    import soundfile as sf

    from engine.audio.synthesizer import AudioSynthesizer

    assert served["http"].get("/v1/models/clips").json()["formats"] == ["zip", "parquet", "wav"]
    local = AudioSynthesizer.load(served["store"] / "clips")
    r = served["http"].post("/v1/models/clips/sample", json={"num_rows": 3, "label": "yes", "seed": 2})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        names = archive.namelist()
        assert names == [f"{i:06d}_yes.wav" for i in range(3)]
        got = [sf.read(io.BytesIO(archive.read(n))) for n in names]
    assert all(rate == 8000 for _, rate in got)
    expected = np.stack(local.sample(3, conditions="yes", seed=2)["audio"])
    assert np.abs(np.stack([x for x, _ in got]) - expected).max() < 1.5 / 32768  # 16-bit WAV
    one = served["http"].post("/v1/models/clips/sample", json={"num_rows": 1, "label": "no", "seed": 1, "format": "wav"})
    assert one.status_code == 200 and one.headers["content-type"] == "audio/wav"
    x, rate = sf.read(io.BytesIO(one.content))
    assert rate == 8000 and np.abs(x - local.sample(1, conditions="no", seed=1)["audio"][0]).max() < 1.5 / 32768


@pytest.mark.parametrize(
    "model_id, body, fragment",
    [
        ("clips", {"num_rows": 2, "format": "wav"}, "returns one clip; num_rows is 2"),
        ("digits", {"num_rows": 3, "format": "json"}, "models of the image modality answer in zip, parquet, png"),
        ("digits", {"num_rows": 3, "format": "zip", "conditions": {"a": 1}}, "one label for every image"),
        ("digits", {"num_rows": 2, "format": "png"}, "returns one image; num_rows is 2. Use 'zip' or 'parquet'"),
        ("digits", {"num_rows": 3, "format": "zip", "label": "eleven"}, "the classes are"),
        ("digits", {"num_rows": 3, "label": "7", "conditions": {"label": "7"}}, "give one or the other"),
        ("adult-gc", {"num_rows": 3, "label": "7"}, "Unknown column 'label'"),  # label is conditions={"label": ...}
        ("adult-gc", {"num_rows": 3, "format": "zip"}, "models of the table modality answer in json, csv, parquet"),
        ("tones", {"num_rows": 1, "format": "png"}, "models of the tone modality answer in zip, parquet"),
        ("tones", {"num_rows": MAX_TONES + 1}, f"at most {MAX_TONES} tones per request for tone models"),
    ],
)
def test_requests_must_fit_the_models_modality(served, model_id, body, fragment):
    r = served["http"].post(f"/v1/models/{model_id}/sample", json=body)
    assert r.status_code == 422 and fragment in r.text, r.text


def test_image_label_may_also_be_a_condition(served):
    by_label = served["http"].post("/v1/models/digits/sample", json={"num_rows": 3, "label": "4", "seed": 0})
    by_condition = served["http"].post("/v1/models/digits/sample", json={"num_rows": 3, "conditions": {"label": "4"}, "seed": 0})
    assert by_label.status_code == by_condition.status_code == 200 and by_label.content == by_condition.content


# ------------------------------------------------------------------ a plugin modality
def _local_tones(served, num_rows: int, seed: int, label: str | None = None) -> pa.Table:
    """What the server must send for the tone model: chunk k is sample_table(seed, stream=k)."""
    synth = ToneSynthesizer.load(served["store"] / "tones")
    conditions = synth.coerce_conditions(None if label is None else {"label": label})
    return pa.concat_tables(
        synth.sample_table(min(TONE_CHUNK, num_rows - off), conditions=conditions, seed=seed, stream=k, row_offset=off)
        for k, off in enumerate(range(0, num_rows, TONE_CHUNK))
    )


def test_toy_sequence_modality_is_served_like_any_other(served):
    """The toy modality of tests/test_modality_plugin.py: card and JSON rows, as its front door makes them."""
    card = served["http"].get("/v1/models/sequences").json()
    assert card["modality"] == "toy_sequence" and card["sequence"] == {"steps": 5, "channels": 2}
    r = served["http"].post("/v1/models/sequences/sample", json={"num_rows": 3, "seed": 4})
    assert r.status_code == 200, r.text
    expected = ToySequenceSynthesizer.load(served["store"] / "sequences").sample_table(3, seed=4, stream=0)
    pd.testing.assert_frame_equal(pd.DataFrame(r.json()), expected.to_pandas(), check_dtype=False)


def test_plugin_modality_card(served):
    card = served["http"].get("/v1/models/tones").json()
    assert card["modality"] == "tone" and card["model"] == "tone"
    assert card["formats"] == ["zip", "parquet"] and card["classes"] == ["low", "high"]


def test_plugin_modality_answers_zip_by_default_with_its_own_media(served):
    import zipfile

    r = served["http"].post("/v1/models/tones/sample", json={"num_rows": 3, "label": "high", "seed": 2})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip", r.text
    assert r.headers["content-disposition"] == 'attachment; filename="tones.zip"'
    expected = _local_tones(served, 3, 2, label="high")
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        # the extension is read from the bytes (RIFF/WAVE), the class name from the ClassLabel metadata
        assert archive.namelist() == ["000000_high.wav", "000001_high.wav", "000002_high.wav"]
        assert [archive.read(n) for n in archive.namelist()] == expected.column("audio").combine_chunks().field("bytes").to_pylist()


def test_plugin_modality_streams_in_its_own_chunks(served):
    _wait_for_no_streams(served)  # max_concurrent_streams is 1: the slot of an earlier stream must be free
    n = 3 * TONE_CHUNK + 1
    with served["http"].stream("POST", "/v1/models/tones/sample", json={"num_rows": n, "seed": 5, "format": "parquet"}) as r:
        assert r.status_code == 200, r.read()
        assert r.headers.get("transfer-encoding") == "chunked" and r.headers["x-synth-num-rows"] == str(n)
        content = r.read()
    assert pq.ParquetFile(pa.py_buffer(content)).num_row_groups == 4  # chunk_rows["tone"], not the default
    table = pq.read_table(pa.py_buffer(content))
    expected = _local_tones(served, n, 5)
    assert table.column("label").to_pylist() == expected.column("label").to_pylist()
    assert table.column("loudness").to_pylist() == expected.column("loudness").to_pylist()


# ------------------------------------------------------------------ audit follow-ups
def test_corrupt_manifest_is_503_naming_the_model_and_others_keep_working(served, client):
    manifest = served["store"] / "bad-manifest" / "manifest.json"  # corrupt since the fixture made it
    good = (served["store"] / "adult-gc" / "manifest.json").read_bytes()
    try:
        for _ in range(2):
            r = served["http"].post("/v1/models/bad-manifest/sample", json={"num_rows": 5})
            assert r.status_code == 503, r.text
            detail = r.json()["detail"]
            assert "Model 'bad-manifest' cannot be served" in detail and "manifest.json" in detail and "not valid JSON" in detail
        assert len(client.sample("adult-gc", 5, seed=1)) == 5
        # The cached verdict follows the file: a repaired manifest serves again.
        manifest.write_bytes(good)
        r = served["http"].post("/v1/models/bad-manifest/sample", json={"num_rows": 5, "seed": 1})
        assert r.status_code == 200, r.text
    finally:
        manifest.write_bytes(BAD_MANIFEST)  # as the fixture made it, whatever test runs next


def _fake_model(path, **manifest) -> None:
    """A folder the store lists as a model: what the ingress reads of one is its manifest."""
    path.mkdir()
    (path / "manifest.json").write_text(json.dumps({"format": "synth-engine-model", "model": "ctgan", **manifest}))


def test_store_index_follows_its_clock(tmp_path):
    """The listing's refresh rules, driven by a fake clock instead of waited out."""
    from serve_apps.errors import RequestRejected
    from serve_apps.store import LISTING_TTL_S, MIN_REFRESH_S, StoreIndex

    now = [100.0]
    index = StoreIndex(str(tmp_path), clock=lambda: now[0])
    assert index.names() == []
    _fake_model(tmp_path / "new")
    with pytest.raises(RequestRejected) as exc:  # an unknown id re-lists at most once per MIN_REFRESH_S
        index.require("new")
    assert exc.value.status == 404
    now[0] += MIN_REFRESH_S + 0.01
    assert index.require("new") == "new" and index.names() == ["new"]
    _fake_model(tmp_path / "newer")
    now[0] += LISTING_TTL_S - 0.5
    assert index.names() == ["new"]  # the listing is trusted for LISTING_TTL_S ...
    now[0] += 1.0
    assert index.names() == ["new", "newer"]  # ... and read again after


def test_store_index_reads_the_modality_from_the_manifest(tmp_path):
    from serve_apps.errors import RequestRejected
    from serve_apps.store import StoreIndex

    _fake_model(tmp_path / "old")  # saved before manifests recorded the modality: the model's tells
    _fake_model(tmp_path / "pic", model="dcgan", modality="image")
    _fake_model(tmp_path / "sound", model="wavenet", modality="sound")
    index = StoreIndex(str(tmp_path))
    assert index.modality("old").name == "table" and index.modality("pic").formats[0] == "zip"
    with pytest.raises(RequestRejected) as exc:
        index.modality("sound")
    assert exc.value.status == 503
    assert "Model 'sound' cannot be served: Unknown modality 'sound'" in exc.value.detail and "'modalities'" in exc.value.detail


def _gzip_csv(lines: int, row: bytes = b"1,2\n") -> bytes:
    import gzip

    return gzip.compress(b"a,b\n" + row * lines, compresslevel=9)


def test_evaluate_refuses_tables_that_decode_past_the_limits(served):
    bomb = _gzip_csv(400_000)  # 1.6 MB of CSV in a few kB
    assert len(bomb) < 20_000
    r = served["http"].post("/v1/evaluate", files={"real": ("r.csv", b"a,b\n1,2\n3,4\n"), "synthetic": ("bomb.csv.gz", bomb)})
    assert r.status_code == 413, r.text
    detail = r.json()["detail"]
    assert "'synthetic' (upload 'bomb.csv.gz')" in detail and f"{MAX_EVAL_BYTES:,} bytes" in detail and "max_eval_bytes" in detail

    rows = _gzip_csv(MAX_EVAL_ROWS + 1)  # under the byte limit, one row over the row limit
    r = served["http"].post("/v1/evaluate", files={"real": ("many.csv.gz", rows), "synthetic": ("s.csv", b"a,b\n1,2\n")})
    assert r.status_code == 413, r.text
    assert "'real' (upload 'many.csv.gz')" in r.json()["detail"] and f"more than {MAX_EVAL_ROWS:,} rows" in r.json()["detail"]

    buf = io.BytesIO()
    pq.write_table(pa.table({"a": [1] * 200_000}), buf)  # constant column: a few kB on the wire
    r = served["http"].post("/v1/evaluate", files={"real": ("r.parquet", buf.getvalue()), "synthetic": ("s.csv", b"a\n1\n")})
    assert r.status_code == 413 and "max_eval_rows" in r.json()["detail"], r.text

    (served["data"] / "big.csv.gz").write_bytes(rows)  # the same limit for references under data_root
    r = served["http"].post("/v1/evaluate", json={"real": "real.csv", "synthetic": "big.csv.gz"})
    assert r.status_code == 413 and "'synthetic' ('big.csv.gz') has more than" in r.json()["detail"], r.text


def test_evaluate_needs_the_key(served):
    r = httpx.post(served["base"] + "/v1/evaluate", json={"real": "real.csv", "synthetic": "synthetic.csv"})
    assert r.status_code == 401 and "Missing API key" in r.json()["detail"]
    r = httpx.post(served["base"] + "/v1/evaluate", files={"real": ("r.csv", b"a\n1\n"), "synthetic": ("s.csv", b"a\n1\n")})
    assert r.status_code == 401


def test_evaluate_malformed_json_is_422(served):
    r = served["http"].post("/v1/evaluate", content=b'{"real": "real.csv",', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["detail"], r.text


def test_evaluate_html_by_accept_header(served):
    r = served["http"].post(
        "/v1/evaluate", json={"real": "real.csv", "synthetic": "synthetic.csv", "detection": False}, headers={"accept": "text/html"}
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text[:500].lower()


def test_a_replica_holds_at_most_max_models(served):
    for model_id in ("adult-gc", "adult-gc-narrow", "adult-ctgan", "adult-gc"):
        assert served["http"].post(f"/v1/models/{model_id}/sample", json={"num_rows": 5}).status_code == 200
    stats = served["http"].get("/v1/stats").json()["generator"]
    assert stats["max_models_per_replica"] == 2
    assert stats["loaded_models"] == ["adult-ctgan", "adult-gc"]  # least recently used first; adult-gc-narrow evicted
    assert httpx.get(served["base"] + "/v1/stats").status_code == 401


def test_default_format_follows_the_modality(served):
    import zipfile

    image = served["http"].post("/v1/models/digits/sample", json={"num_rows": 3, "label": "4", "seed": 0})
    assert image.status_code == 200 and image.headers["content-type"] == "application/zip", image.text
    with zipfile.ZipFile(io.BytesIO(image.content)) as archive:
        assert archive.namelist() == ["000000_4.png", "000001_4.png", "000002_4.png"]
    table = served["http"].post("/v1/models/adult-gc/sample", json={"num_rows": 3, "seed": 0})
    assert table.headers["content-type"] == "application/json" and len(table.json()) == 3


def test_zip_entries_carry_class_names():
    import zipfile

    from engine.images.io import image_table
    from serve_apps.formats import make_encoder

    chunk = image_table(np.zeros((3, 4, 4, 1), np.uint8), np.array([0, 1, 2]), ["cat", "dog/wolf", "..."])
    enc = make_encoder("zip")
    blob = enc.begin() + enc.encode(chunk) + enc.end()
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        assert archive.namelist() == ["000000_cat.png", "000001_dog-wolf.png", "000002_2.png"]
        # No clock in the bytes: two answers to one request made a second apart are the same archive.
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    unnamed = image_table(np.zeros((1, 4, 4, 1), np.uint8), np.array([5]))
    enc = make_encoder("zip")
    with zipfile.ZipFile(io.BytesIO(enc.begin() + enc.encode(unnamed) + enc.end())) as archive:
        assert archive.namelist() == ["000000_5.png"]


def test_media_encoders_take_any_bytes_column():
    import zipfile

    from serve_apps.formats import FormatMismatch, make_encoder

    wav = b"RIFF\x00\x00\x00\x00WAVEfmt "
    plain = pa.table({"clip": pa.array([wav, b"??"], pa.binary()), "label": ["a b", "c/d"]})  # no struct, no names
    enc = make_encoder("zip")
    enc.check(plain)
    with zipfile.ZipFile(io.BytesIO(enc.begin() + enc.encode(plain) + enc.end())) as archive:
        assert archive.namelist() == ["000000_a-b.wav", "000001_c-d.bin"]  # sniffed, else .bin
    named = pa.table({"x": [1], "media": pa.StructArray.from_arrays(
        [pa.array([b"..."], pa.binary()), pa.array(["dir/take.FLAC"])], names=["bytes", "path"])})
    enc = make_encoder("zip")
    with zipfile.ZipFile(io.BytesIO(enc.begin() + enc.encode(named) + enc.end())) as archive:
        assert archive.namelist() == ["000000.flac"]  # the file name's extension; no label column, no suffix
    with pytest.raises(FormatMismatch, match="needs PNG bytes; the samples hold 'wav' media"):
        make_encoder("png").check(plain.slice(0, 1))
    with pytest.raises(FormatMismatch, match="no column of encoded media"):
        make_encoder("zip").check(pa.table({"a": [1]}))
    for fmt in ("json", "csv"):
        with pytest.raises(FormatMismatch, match="cannot carry the binary column"):
            make_encoder(fmt).check(named)
    make_encoder("parquet").check(named)  # Parquet holds anything


def _wait_for_no_streams(served, timeout: float = 30.0) -> None:
    """Until the ingress has no stream in progress: the server answers when its last stream ends (no polling)."""
    stats = served["http"].get("/v1/stats", params={"wait_idle_s": timeout}).json()
    assert stats["ingress"]["active_streams"] == 0, "a stream slot was never released"


def test_concurrent_streams_are_capped_with_retry_after(served):
    _wait_for_no_streams(served)
    big = {"num_rows": MAX_ROWS, "seed": 1, "format": "csv"}
    with httpx.Client(base_url=served["base"], headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as slow:
        with slow.stream("POST", "/v1/models/adult-gc/sample", json=big) as r:
            assert r.status_code == 200  # headers only: this client reads nothing more for now
            second = served["http"].post("/v1/models/adult-gc/sample", json={"num_rows": CHUNK + 1, "seed": 2})
            assert second.status_code == 503, second.text
            assert second.headers["retry-after"] == "5" and "max_concurrent_streams=1" in second.json()["detail"]
            small = served["http"].post("/v1/models/adult-gc/sample", json={"num_rows": CHUNK, "seed": 2})
            assert small.status_code == 200  # one chunk is not a stream: never capped
    _wait_for_no_streams(served)  # the slot comes back once the stream ends or its client leaves
    again = served["http"].post("/v1/models/adult-gc/sample", json={"num_rows": CHUNK + 1, "seed": 2, "format": "csv"})
    assert again.status_code == 200 and again.content.count(b"\n") == CHUNK + 2


def test_text_model_streams_json_lines_by_default_and_answers_csv_and_parquet(served):
    """``/v1/models/{id}/sample`` of a text model: the texts ``sample`` gives for the asked label, one JSON object per
    line by default (the text modality's first format), and the same rows as CSV and Parquet."""
    from engine.text.synthesizer import TextSynthesizer

    expected = TextSynthesizer.load(served["store"] / "reviews").sample(5, conditions={"label": "b"}, seed=4)
    r = served["http"].post("/v1/models/reviews/sample", json={"num_rows": 5, "seed": 4, "conditions": {"label": "b"}})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/jsonl"), r.text
    lines = r.content.decode().splitlines()
    assert len(lines) == 5 and [json.loads(line) for line in lines] == expected.to_dict("records")
    read = {"parquet": pd.read_parquet, "csv": lambda b: pd.read_csv(b, keep_default_na=False)}
    for fmt, reader in read.items():
        r = served["http"].post("/v1/models/reviews/sample", json={"num_rows": 5, "seed": 4, "format": fmt, "conditions": {"label": "b"}})
        assert r.status_code == 200, r.text
        pd.testing.assert_frame_equal(reader(io.BytesIO(r.content)), expected, check_dtype=False)


def test_series_model_answers_long_format_sequences_in_every_format(served):
    """``/v1/models/{id}/sample`` of a series model: the rows ``sample_table`` gives, as Parquet, CSV and JSON."""
    from engine.timeseries.synthesizer import TimeSeriesSynthesizer

    expected = TimeSeriesSynthesizer.load(served["store"] / "devices").sample_table(5, conditions={"site": "north"}, seed=4).to_pandas()
    read = {"parquet": pd.read_parquet, "csv": pd.read_csv, "json": lambda b: pd.DataFrame(json.loads(b.getvalue()))}
    for fmt, reader in read.items():
        r = served["http"].post("/v1/models/devices/sample", json={"num_rows": 5, "seed": 4, "format": fmt, "conditions": {"site": "north"}})
        assert r.status_code == 200, r.text
        got = reader(io.BytesIO(r.content))
        assert list(got.columns) == list(expected.columns) and got["device"].nunique() == 5, fmt
        np.testing.assert_allclose(got["temp"], expected["temp"], rtol=1e-6)
        assert (got["site"] == "north").all() and (got["state"] == expected["state"]).all()
        assert (pd.to_datetime(got["timestamp"]) == expected["timestamp"]).all(), fmt
