"""Load benchmark of the HTTP API (not a test).

Starts the application on a local Ray instance, with a Gaussian copula fitted
on Adult in a temporary model store, then drives it from a second process
over loopback:

* 100-row JSON requests at 1, 8 and 32 concurrent clients (a bounded number
  of requests each): p50/p99 latency, requests per second, errors;
* one streamed 1,000,000-row Parquet request: rows per second, against
  ``TabularSynthesizer.sample`` of the same rows in-process.

    python bench/serve_load.py [--requests 320] [--stream-rows 1000000]
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

CONCURRENCY = (1, 8, 32)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ the driver (second process)
def drive(base: str, key: str, model_id: str, requests: int, stream_rows: int) -> dict:
    import httpx
    import pyarrow as pa
    import pyarrow.parquet as pq

    headers = {"Authorization": f"Bearer {key}"}
    out: dict = {"latency": {}}
    for clients in CONCURRENCY:
        total = max(requests // clients, 1) * clients
        per_client = total // clients
        latencies: list[float] = []
        errors = [0]
        lock = threading.Lock()

        def worker(offset: int) -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
                for i in range(per_client):
                    started = time.perf_counter()
                    try:
                        r = http.post(f"/v1/models/{model_id}/sample", json={"num_rows": 100, "seed": offset * 10_000 + i})
                        ok = r.status_code == 200 and len(r.json()) == 100
                    except httpx.HTTPError:
                        ok = False
                    elapsed = time.perf_counter() - started
                    with lock:
                        latencies.append(elapsed)
                        errors[0] += 0 if ok else 1

        threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        lat = np.asarray(latencies) * 1000
        out["latency"][clients] = {
            "requests": len(latencies),
            "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)),
            "requests_per_s": len(latencies) / wall,
            "errors": errors[0],
        }

    started = time.perf_counter()
    size = 0
    with httpx.Client(base_url=base, headers=headers, timeout=600) as http:
        body = {"num_rows": stream_rows, "seed": 1, "format": "parquet"}
        with http.stream("POST", f"/v1/models/{model_id}/sample", json=body) as r:
            r.raise_for_status()
            parts = []
            for part in r.iter_bytes():
                parts.append(part)
                size += len(part)
    wall = time.perf_counter() - started
    rows = pq.ParquetFile(pa.py_buffer(b"".join(parts))).metadata.num_rows
    out["stream"] = {"rows": rows, "bytes": size, "seconds": wall, "rows_per_s": rows / wall}
    return out


# ------------------------------------------------------------------ the server side (this process)
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=320, help="100-row requests per concurrency level (default 320)")
    parser.add_argument("--stream-rows", type=int, default=1_000_000, help="rows of the streamed Parquet request")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)")
    parser.add_argument("--drive", nargs=3, metavar=("BASE", "MODEL", "REQUESTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        base, model_id, requests = args.drive
        print(json.dumps(drive(base, os.environ["SYNTH_BENCH_KEY"], model_id, int(requests), args.stream_rows)))
        return 0

    import ray
    from ray import serve

    from engine.data import load_adult
    from engine.tabular.synthesizer import TabularSynthesizer
    from serve_apps.app import build_app

    key = secrets.token_hex(16)
    os.environ["SYNTH_BENCH_KEY"] = key
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as store:
        model_id = "adult-gc"
        TabularSynthesizer("gaussian_copula").fit(load_adult(), seed=0).save(Path(store) / model_id)
        synth = TabularSynthesizer.load(Path(store) / model_id)
        synth.sample(1000, seed=0)  # warm up as the server is warmed up below
        started = time.perf_counter()
        synth.sample(args.stream_rows, seed=1)
        in_process = args.stream_rows / (time.perf_counter() - started)

        ray.init(num_cpus=args.num_cpus, include_dashboard=False, configure_logging=False, logging_level="ERROR")
        port = _free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config={"log_level": "WARNING"})
        app = build_app({"models_dir": store, "api_key_env": "SYNTH_BENCH_KEY"})  # default resources: 1.75 CPUs
        serve.run(app, name="synth-bench", route_prefix="/", logging_config={"log_level": "WARNING", "enable_access_log": False})
        base = f"http://127.0.0.1:{port}"
        try:
            import httpx

            warm = httpx.post(f"{base}/v1/models/{model_id}/sample", json={"num_rows": 100}, headers={"Authorization": f"Bearer {key}"}, timeout=120)
            warm.raise_for_status()
            run = subprocess.run(
                [sys.executable, __file__, "--drive", base, model_id, str(args.requests), "--stream-rows", str(args.stream_rows)],
                capture_output=True, text=True, env=os.environ.copy(), check=False, timeout=1800,
            )
            if run.returncode != 0:
                print(run.stderr, file=sys.stderr)
                return run.returncode
            result = json.loads(run.stdout.strip().splitlines()[-1])
        finally:
            serve.shutdown()
            ray.shutdown()

    print(f"100-row JSON requests ({args.requests} per level), driven from a second process over loopback:")
    print(f"{'clients':>8} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'errors':>7}")
    for clients, r in result["latency"].items():
        print(f"{clients:>8} {r['requests']:>9} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['requests_per_s']:>8.1f} {r['errors']:>7}")
    s = result["stream"]
    print(
        f"streamed Parquet: {s['rows']:,} rows, {s['bytes'] / 1e6:.1f} MB in {s['seconds']:.2f} s = {s['rows_per_s']:,.0f} rows/s; "
        f"in-process sample(): {in_process:,.0f} rows/s; ratio {s['rows_per_s'] / in_process:.2f} (target >= 0.5)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
