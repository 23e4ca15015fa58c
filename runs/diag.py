"""Diagnostic: in-process diffusion_ts on Stocks; disc of the raw output vs the output through the synthesizer's encoder decode (clip to range, integer rounding)."""
import sys, time
sys.path.insert(0, "bench")
import numpy as np, pandas as pd, torch
torch.set_num_threads(1)
import timeseries as B
from engine.timeseries.transforms import SequenceEncoder
from engine.timeseries.models.diffusion import DiffusionTSConfig, SequenceDiffusionModel
seconds = float(sys.argv[1])
frame = pd.read_csv(B.DATA / "stock_data.csv").iloc[::-1].reset_index(drop=True)
real = B.windows01(frame)
enc = SequenceEncoder(sequence_length=24, stride=1).fit(frame)
e = enc.transform(frame)
data = e.training_data()
x = torch.from_numpy(data["x"]); n = len(x)
print("encoded", x.shape, float(x.min()), float(x.max()), "real windows", real.shape, flush=True)
torch.manual_seed(0)
model = SequenceDiffusionModel(DiffusionTSConfig(), enc.layout)
opts = model.configure_optimizers(); gen = torch.Generator().manual_seed(0); rng = np.random.default_rng(0)
t0 = time.perf_counter(); step = 0
while time.perf_counter() - t0 < seconds:
    idx = torch.from_numpy(rng.integers(0, n, 64))
    model.train_step({"x": x[idx], "mask": torch.ones(64, 24), "static": torch.zeros(64, 0)}, opts, gen); step += 1
syn = model.generate(n, None, torch.Generator().manual_seed(1))
raw01 = (syn + 1) / 2
print("steps", step, "share outside [-1,1]:", float((np.abs(syn) > 1).mean()), flush=True)
lengths = np.full(n, 24)
out = enc.to_frame(enc.decode_arrays(syn, lengths, None), lengths, [() for _ in range(n)])
print(list(out.columns)[:8], flush=True)
out["sequence_id"] = np.repeat(np.arange(n), 24)
dec01 = B.windows01_like(out, frame)
for label, s01 in (("raw", raw01), ("decoded", dec01)):
    d = [B.scores(real, s01, 2000, 0, 1, seed=k)[0] for k in range(3)]
    print(label, "disc per classifier seed", np.round(d, 3), flush=True)
