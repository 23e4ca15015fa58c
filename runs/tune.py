"""In-process tuning runs (no Ray): train a model by its train_step for N seconds, score like the bench."""
import json, sys, time
sys.path.insert(0, "bench")
import numpy as np, pandas as pd, torch
torch.set_num_threads(1)
import timeseries as B
from engine.timeseries.transforms import SequenceLayout

model_name, data, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
cfg_over = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
bs = int(sys.argv[5]) if len(sys.argv) > 5 else 64
frame = pd.read_csv(B.DATA / B.FILES[data])
if data == "stocks":
    frame = frame.iloc[::-1].reset_index(drop=True)
real = B.windows01(frame)
x = torch.from_numpy((real * 2 - 1).astype(np.float32))
n, T, c = x.shape
layout = SequenceLayout(steps=T, channels=c, static_dim=0)
if model_name == "diffusion_ts":
    from engine.timeseries.models.diffusion import DiffusionTSConfig as C, SequenceDiffusionModel as M
else:
    from engine.timeseries.models.timegan import TimeGANConfig as C, TimeGANModel as M
torch.manual_seed(0)
model = M(C(**cfg_over), layout)
opts = model.configure_optimizers()
gen = torch.Generator().manual_seed(0)
rng = np.random.default_rng(0)
phases = model.phases() if hasattr(model, "phases") else []
plan = [(p.name, p.steps) for p in phases] if phases else [("default", None)]
t0 = time.perf_counter(); step = 0; pi = 0; in_phase = 0
mask, static = torch.ones(bs, T), torch.zeros(bs, 0)
last = {}
while time.perf_counter() - t0 < seconds:
    name, length = plan[pi]
    model.phase = name
    idx = torch.from_numpy(rng.integers(0, n, bs))
    last = model.train_step({"x": x[idx], "mask": mask, "static": static}, opts, gen)
    step += 1; in_phase += 1
    if length is not None and in_phase >= length and pi + 1 < len(plan):
        pi += 1; in_phase = 0
    if step % 500 == 0:
        print(step, name, {k: round(v, 4) for k, v in last.items()}, round(time.perf_counter() - t0), flush=True)
train_s = time.perf_counter() - t0
variants = json.loads(sys.argv[6]) if len(sys.argv) > 6 else [{}]
n_eval = min(n, int(sys.argv[7]) if len(sys.argv) > 7 else 4000)
real = real[np.random.default_rng(5).permutation(n)[:n_eval]]
import dataclasses
base = model.config
for v in variants:
    model.config = dataclasses.replace(base, **v)
    t1 = time.perf_counter()
    syn = model.generate(n_eval, None, torch.Generator().manual_seed(1))
    sample_s = time.perf_counter() - t1
    d = B.scores(real, (syn + 1) / 2, 2000, 0, 1)
    print(f"RESULT {model_name} {data} {cfg_over} {v} bs={bs}: {step} steps in {train_s:.0f} s (phase {plan[pi][0]}), "
          f"disc {d[0]:.3f}, sampling {n_eval / sample_s:.0f} seq/s (eval on {n_eval})", flush=True)
