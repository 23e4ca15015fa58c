"""Scaling figures for the tabular CTGAN on Adult (issue 3).

Prints: sampling rows/s with 1 and 2 actors of one CPU each and their ratio;
peak memory (PSS of the driver and every Ray process, sampled every 0.25 s) of
the whole sharded sampling job for 1 and 10 million rows and their ratio;
training seconds per epoch with 1 and 2 Ray Train workers; and rows/s of Ray
Data's write_parquet against pyarrow writing the same table alone.

    python bench/scale.py                 # about 15 minutes on 2 cores
    python bench/scale.py --big-rows 2000000
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import psutil


class PeakMemory:
    """Peak of the summed memory of this process and all its descendants (Ray's GCS, raylet and workers).

    PSS (proportional set size) splits shared pages between the processes
    that map them, so the object store's shared memory is counted once, not
    once per worker; RSS is the fallback where PSS is not readable.
    """

    def __init__(self, interval: float = 0.25):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    @staticmethod
    def now() -> int:
        me = psutil.Process()
        total = 0
        for p in [me, *me.children(recursive=True)]:
            try:
                info = p.memory_full_info()
                total += getattr(info, "pss", info.rss)
            except psutil.Error:
                pass
        return total

    def __enter__(self) -> "PeakMemory":
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.thread.join()
        self.peak = max(self.peak, self.now())


def steady_rate(files: list[str], actors: int) -> float:
    """Rows/s between the moment every actor had finished a first shard and the last shard's completion.

    Read from the shard files' modification times: it leaves out the pool's start-up (actor processes
    importing torch and loading the model), which end-to-end figures of short runs are dominated by.
    """
    import pyarrow.parquet as pq

    done = sorted((Path(f).stat().st_mtime, pq.ParquetFile(f).metadata.num_rows) for f in files)
    if len(done) <= actors:
        return float("nan")
    return sum(rows for _, rows in done[actors:]) / (done[-1][0] - done[actors - 1][0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=3, help="training epochs per worker count")
    # Each actor imports torch and loads the model once (a few seconds): enough rows that this start-up,
    # paid once per pool, does not decide the 1-vs-2-actor ratio (the steady-state rate leaves it out).
    p.add_argument("--rate-rows", type=int, default=10_000_000, help="rows for the 1-vs-2-actor rate")
    p.add_argument("--small-rows", type=int, default=1_000_000)
    p.add_argument("--big-rows", type=int, default=10_000_000)
    p.add_argument("--rows-per-shard", type=int, default=50_000)
    p.add_argument("--skip-memory", action="store_true", help="skip the 1M / 10M-row peak-memory runs")
    args = p.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq
    import ray

    from engine import TabularSynthesizer
    from engine.data import load_adult
    from engine.batch.sharded import sample_to_parquet

    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    real = load_adult()
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))

    per_epoch = {}
    for workers in (1, 2):
        synth = TabularSynthesizer("ctgan", num_workers=workers, cpus_per_worker=1).fit(real, epochs=args.epochs, show_progress=False)
        # The first epoch includes warm-up; the median of the rest is the steady rate.
        secs = sorted(h["seconds"] for h in synth.history_[1:]) or [synth.history_[0]["seconds"]]
        per_epoch[workers] = secs[len(secs) // 2]
        print(f"[train] {workers} worker(s): {per_epoch[workers]:.2f} s/epoch", flush=True)
    model = str(work / "model")
    synth.save(model)

    rates, steady = {}, {}
    for actors in (1, 2):
        t0 = time.perf_counter()
        result = sample_to_parquet(model, str(work / f"rate-{actors}"), num_rows=args.rate_rows,
                                   rows_per_shard=args.rows_per_shard, seed=0, num_actors=actors, cpus_per_actor=1)
        rates[actors] = args.rate_rows / (time.perf_counter() - t0)
        steady[actors] = steady_rate(result.files, actors)
        print(f"[sample] {actors} actor(s): {rates[actors]:,.0f} rows/s end to end, "
              f"{steady[actors]:,.0f} rows/s once every actor has written its first shard", flush=True)

    peaks = {}
    baseline = PeakMemory.now()  # Ray idle, model loaded in no actor yet
    for rows in () if args.skip_memory else (args.small_rows, args.big_rows):
        out = work / f"mem-{rows}"
        t0 = time.perf_counter()
        with PeakMemory() as mem:
            sample_to_parquet(model, str(out), num_rows=rows, rows_per_shard=args.rows_per_shard,
                              seed=0, num_actors=2, cpus_per_actor=1)
        peaks[rows] = (mem.peak, time.perf_counter() - t0)
        shutil.rmtree(out)  # 10 million rows take hundreds of MB on disk
        print(f"[memory] {rows:,} rows: peak {mem.peak / 2**20:,.0f} MiB in {peaks[rows][1]:.0f} s", flush=True)

    table = synth.sample(500_000, seed=1)
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    t0 = time.perf_counter()
    pq.write_table(arrow, work / "pyarrow.parquet")
    pyarrow_rate = len(table) / (time.perf_counter() - t0)
    ds = ray.data.from_arrow(arrow).repartition(10).materialize()
    t0 = time.perf_counter()
    ds.write_parquet(str(work / "raydata"))
    ray_rate = len(table) / (time.perf_counter() - t0)

    print("\n=== scale (CTGAN on Adult, this machine) ===")
    print(f"training: {per_epoch[1]:.2f} s/epoch with 1 worker, {per_epoch[2]:.2f} s/epoch with 2 workers "
          f"(each worker 1 CPU; ratio {per_epoch[1] / per_epoch[2]:.2f}x)")
    print(f"sampling {args.rate_rows:,} rows: {rates[1]:,.0f} rows/s with 1 actor, {rates[2]:,.0f} rows/s with 2 actors "
          f"-> {rates[2] / rates[1]:.2f}x end to end, pool start-up included (target >= 1.7x); "
          f"steady state {steady[1]:,.0f} vs {steady[2]:,.0f} rows/s -> {steady[2] / steady[1]:.2f}x")
    if peaks:
        (small, t_small), (big, t_big) = peaks[args.small_rows], peaks[args.big_rows]
        print(f"peak memory (PSS, driver + all Ray processes) of the sampling job with 2 actors: "
              f"{small / 2**20:,.0f} MiB for {args.small_rows:,} rows ({t_small:.0f} s), "
              f"{big / 2**20:,.0f} MiB for {args.big_rows:,} rows ({t_big:.0f} s) -> {big / small:.2f}x (target <= 1.3x); "
              f"Ray idle before: {baseline / 2**20:,.0f} MiB")
    print(f"write_parquet: Ray Data {ray_rate:,.0f} rows/s, pyarrow alone {pyarrow_rate:,.0f} rows/s "
          f"-> {ray_rate / pyarrow_rate:.2f} of the ceiling")
    ray.shutdown()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
