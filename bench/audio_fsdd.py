"""A conditional audio model (WaveGAN, or ``--model specdiff``) on the Free Spoken Digit Dataset (8 kHz), judged by a classifier trained on real digits.

Trains on five speakers and holds the sixth (``--holdout-speaker``) out: the
judge (a small CNN on log-mel spectrograms, trained by the evaluator on the
training speakers' clips) is tested on the held-out speaker, which gives its
own accuracy on real clips beside the conditional accuracy of the generated
ones (the share of clips generated as digit d that the judge hears as d).
Prints also the Inception-style score (with the WaveGAN paper's SC09 figures
for reference: a different classifier and data set, so only a rough scale),
the log-mel and judge-feature Fréchet distances against their real-vs-real
floors and against a baseline measured in the same run (white noise at the
real clips' loudness, with the requested labels), clips generated per second,
and training clips per second with 1 and 2 Ray Train workers.

    python bench/audio_fsdd.py --quick            # minutes: a few epochs on 1,000 clips
    python bench/audio_fsdd.py --minutes 30       # the issue's setting: 30 minutes of training (the loop's time budget)
    python bench/audio_fsdd.py --minutes 30 --model specdiff    # the spectrogram diffusion model, same protocol

The WaveGAN is conditioned three ways: a label embedding beside the noise, a
projection critic, and a class head on the critic (AC-GAN, ``aux_weight``),
which learns the digits from the training speakers' real clips only. Its
critic reads a log-power spectrogram beside the waveform (``--spectral-width``;
0 gives the paper's waveform critic), by default on 64 mel bands at a 128-sample
hop (``--spectral-mels``, ``--spectral-hop``), and the clips come from a moving
average of the generator's weights (``--ema-decay``; 0 gives the last weights).
It trains under bfloat16 autocast where the machine multiplies bfloat16
natively (``--mixed-precision``): twice the steps in the same 30 minutes. The
spectrogram diffusion model embeds the label and samples with classifier-free
guidance. The judge is trained here on those same real clips and never seen by
the generator.

Timings on a shared machine are inflated by its load; the script prints the load average.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "audio" / "fsdd"
RATE = 8000
# Inception scores on SC09 reported by the WaveGAN paper (Donahue et al. 2019) and DiffWave (Kong et al. 2021).
PAPER_IS = {"real SC09": 9.18, "WaveGAN": 4.67, "SpecGAN": 6.03, "DiffWave": 5.30}


def files_by_split(holdout_speaker: str) -> tuple[list[Path], list[Path]]:
    files = sorted(FSDD.glob("*.wav"))
    if not files:
        raise SystemExit(f"No FSDD clips in {FSDD}: the benchmark needs the shared data set.")
    held = [f for f in files if f.stem.split("_")[1] == holdout_speaker]
    train = [f for f in files if f.stem.split("_")[1] != holdout_speaker]
    return train, held


def labels_of(files: list[Path]) -> list[str]:
    return [f.stem.split("_")[0] for f in files]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="wavegan", choices=("wavegan", "specdiff"), help="the model to train and judge")
    p.add_argument("--quick", action="store_true", help="a reduced run: small model, few epochs, 0.5 s clips")
    p.add_argument("--minutes", type=float, default=30.0, help="training time budget (ignored with --quick or --epochs)")
    p.add_argument("--epochs", type=int, default=None, help="train exactly this many epochs instead of a budget")
    p.add_argument("--duration", type=float, default=0.5,
                   help="seconds per clip (FSDD's median recording is 0.42 s; 0.5 s halves the cost of a step against 1 s)")
    p.add_argument("--model-dim", type=int, default=None, help="WaveGAN width d (default 16; --quick 8)")
    p.add_argument("--critic-iterations", type=int, default=1, help="WaveGAN: critic steps per generator step")
    p.add_argument("--aux-weight", type=float, default=1.0, help="WaveGAN: weight of the critic's class head (AC-GAN); 0: projection only")
    p.add_argument("--spectral-width", type=int, default=16,
                   help="WaveGAN: width of the critic's spectrogram branch (0: the paper's waveform critic alone)")
    p.add_argument("--spectral-hop", type=int, default=128,
                   help="WaveGAN: hop of the spectrogram branch's STFT in samples (0: a quarter of its 256-sample FFT)")
    p.add_argument("--spectral-mels", type=int, default=64, help="WaveGAN: mel bands the spectrogram branch reads (0: linear bins)")
    p.add_argument("--mixed-precision", default="auto", choices=("auto", "no", "bf16"),
                   help="bf16: train under bfloat16 autocast (GPUs, and CPUs that multiply bfloat16 natively); "
                        "auto: WaveGAN in bf16 where this machine multiplies it natively, specdiff (not measured in "
                        "bf16) in float32")
    p.add_argument("--guidance-scale", type=float, default=None, help="specdiff: classifier-free guidance (default: the model's)")
    p.add_argument("--sampling-steps", type=int, default=None, help="specdiff: DDIM steps per clip (default: the model's)")
    p.add_argument("--ema-decay", type=float, default=None, help="decay of the sampling weights' moving average (default: WaveGAN 0.998, specdiff the model's)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: WaveGAN 2e-4, specdiff the model's)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads of the driver and of each training worker (1: on a shared, oversubscribed machine "
                        "two threads per process ran 5x slower than one)")
    p.add_argument("--judge-epochs", type=int, default=None, help="passes of the judge over the real training clips (default 15; --quick 3)")
    p.add_argument("--holdout-speaker", default="theo")
    p.add_argument("--per-class", type=int, default=None, help="generated clips per digit for the evaluation")
    p.add_argument("--no-scaling", action="store_true", help="skip the 1 vs 2 worker timing")
    p.add_argument("--train-clips", type=int, default=None, help="train the model on this many clips (default: all; --quick: 1000)")
    p.add_argument("--evaluate-only", action="store_true", help="evaluate the model saved in --out/model again (no training)")
    p.add_argument("--out", default=None, help="folder for the model and report (default: a temporary folder)")
    args = p.parse_args()

    import torch

    from engine.audio.io import AudioSet, read_audio
    from engine.audio.metrics import evaluate_audio
    from engine.audio.metrics.judge import AudioJudge
    from engine.audio.synthesizer import AudioSynthesizer
    from engine.core.runtime import ray_session

    torch.set_num_threads(args.threads)
    if args.mixed_precision == "auto":
        from engine.core.precision import native_bfloat16

        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        args.mixed_precision = "bf16" if args.model == "wavegan" and native_bfloat16(device) else "no"
    quick = args.quick
    duration = args.duration
    if args.model == "wavegan":
        model_config = {"model_dim": args.model_dim or (8 if quick else 16), "layers": 5, "aux_weight": args.aux_weight,
                        "critic_iterations": args.critic_iterations, "lr": args.lr or 2e-4,
                        "spectral_width": args.spectral_width, "spectral_hop": args.spectral_hop,
                        "spectral_mels": args.spectral_mels,
                        "ema_decay": 0.998 if args.ema_decay is None else args.ema_decay}
    else:
        model_config = {} if args.lr is None else {"lr": args.lr}
        if quick:
            model_config["block_out_channels"] = (16, 32)
        if args.ema_decay is not None:
            model_config["ema_decay"] = args.ema_decay
    # Sampling settings, applied when generating (also to a model loaded with --evaluate-only).
    generate_options = {key: getattr(args, key) for key in ("guidance_scale", "sampling_steps") if getattr(args, key) is not None}
    steps_per_batch = args.critic_iterations if args.model == "wavegan" else 1
    batch_size = args.batch_size
    per_class = args.per_class or (20 if quick else 100)
    model_clips = args.train_clips or (1000 if quick else None)  # the judge always trains on every training clip
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-audio-"))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; output in {out}")

    train_files, held_files = files_by_split(args.holdout_speaker)
    num = int(RATE * duration)
    train = read_audio([str(f) for f in train_files], labels_of(train_files), sample_rate=RATE, num_samples=num)
    held = read_audio([str(f) for f in held_files], labels_of(held_files), sample_rate=RATE, num_samples=num)
    print(f"FSDD: {len(train)} training clips (5 speakers), {len(held)} held-out clips (speaker {args.holdout_speaker!r}); "
          f"{duration} s at {RATE} Hz; model {model_config}; mixed precision {args.mixed_precision}")

    def make(show_progress: bool = False, num_workers: int = 1, **kw) -> AudioSynthesizer:
        # The workers share --threads cores: two workers of two threads each would wait forever for 4 CPUs on 2.
        return AudioSynthesizer(args.model, sample_rate=RATE, duration=duration, model_config=model_config,
                                show_progress=show_progress, num_workers=num_workers,
                                cpus_per_worker=max(1, args.threads // num_workers), **kw)

    # One judge for both evaluations, trained on the training speakers' real clips only.
    judge_epochs = args.judge_epochs or (3 if quick else 15)
    started = time.perf_counter()
    judge = AudioJudge(epochs=judge_epochs, seed=0).fit(train.clips, train.labels, RATE)
    print(f"judge trained in {(time.perf_counter() - started) / 60:.1f} min ({judge_epochs} epochs on {len(train)} real clips); "
          f"its accuracy on the held-out speaker's real clips: {(judge.run(held.clips)[1].argmax(1) == held.labels).mean():.3f}", flush=True)

    scaling: dict[int, float] = {}
    train_wall = float("nan")
    if args.evaluate_only:
        synth = AudioSynthesizer.load(out / "model")
        print(f"loaded the model in {out / 'model'} ({len(synth.history_)} epochs)")
    else:
        with ray_session():
            if not args.no_scaling:
                # 4 (8) optimisation steps per epoch on 1 worker, half as many on each of 2.
                take = (4 if quick else 8) * batch_size * steps_per_batch
                pick = np.random.default_rng(1).permutation(len(train))[:take]
                subset = AudioSet(train.clips[pick], RATE, train.labels[pick], train.class_names)
                for workers in (1, 2):
                    s = make(num_workers=workers).fit(subset.clips, subset.label_names(), epochs=2, batch_size=batch_size)
                    seconds = s.history_[-1]["seconds"]  # the second epoch: no start-up cost
                    scaling[workers] = len(subset) / seconds
                print(f"training speed: 1 worker {scaling[1]:.1f} clips/s, 2 workers {scaling[2]:.1f} clips/s "
                      f"(x{scaling[2] / scaling[1]:.2f})")

            if model_clips is not None and model_clips < len(train):
                pick = np.random.default_rng(2).permutation(len(train))[:model_clips]
                model_data = AudioSet(train.clips[pick], RATE, train.labels[pick], train.class_names)
            else:
                model_data = train
            print(f"{args.model} trains on {len(model_data)} clips")
            started = time.perf_counter()
            synth = make(checkpoint_every=1000, show_progress=True)  # one line per epoch in a log
            if args.epochs is not None or quick:
                synth.fit(model_data.clips, model_data.label_names(), epochs=args.epochs or 3, batch_size=batch_size,
                          mixed_precision=args.mixed_precision)
            else:
                synth.fit(model_data.clips, model_data.label_names(), batch_size=batch_size, time_budget=args.minutes * 60,
                          mixed_precision=args.mixed_precision)
            train_wall = time.perf_counter() - started
            last = synth.history_[-1]
            per_epoch = len(model_data) // (batch_size * steps_per_batch)
            print(f"trained {last.get('epoch')} epochs (about {int(last.get('epoch', 0) * per_epoch)} optimisation steps) in {train_wall / 60:.1f} min wall "
                  f"(budget {'none' if args.epochs is not None or quick else f'{args.minutes:g} min'}; stopped by "
                  f"{last.get('stopped_by') or 'epochs'}); last: "
                  + ", ".join(f"{k} {v:.3g}" for k, v in last.items() if isinstance(v, float) and k != "epoch"))
            synth.save(out / "model")

    conditions = {str(d): per_class for d in range(10)}
    started = time.perf_counter()
    clips = synth.generate(conditions=conditions, seed=0, **generate_options)
    gen_rate = len(clips) / (time.perf_counter() - started)
    print(f"generated {len(clips)} clips at {gen_rate:.1f} clips/s (one process, {torch.get_num_threads()} threads"
          + "".join(f", {k} {v}" for k, v in generate_options.items()) + ")")

    # Baseline measured here: white noise at the real clips' RMS, with the requested labels.
    rng = np.random.default_rng(0)
    rms = float(np.sqrt((train.clips ** 2).mean()))
    noise = AudioSet(np.clip(rng.normal(0, rms, clips.clips.shape), -1, 1).astype(np.float32), RATE, clips.labels, clips.class_names)

    report = evaluate_audio(train, clips, holdout=held, seed=0, trained_judge=judge)
    baseline = evaluate_audio(train, noise, holdout=held, seed=0, trained_judge=judge)
    report.save(out / "report")
    s, b = report.scores, baseline.scores
    print()
    print(f"conditional accuracy (judge): {s['conditional_accuracy']:.3f}   [target >= 0.80; white noise {b['conditional_accuracy']:.3f}; "
          f"judge on held-out real speaker {s['judge_accuracy_real']:.3f}]")
    print(f"Inception-style score: {s['inception_score']:.2f}   [held-out real {s['inception_score_real']:.2f}; noise "
          f"{b['inception_score']:.2f}; max 10]")
    print("  for scale only (SC09, 16 kHz, the WaveGAN authors' classifier; another data set and judge): "
          + ", ".join(f"{k} {v}" for k, v in PAPER_IS.items()))
    for key in ("mel_frechet", "judge_frechet"):
        print(f"{key}: {s[key]:.3g}   [floor (train vs held-out speaker) {s[key + '_floor']:.3g}, ratio {s[key] / s[key + '_floor']:.2f}; "
              f"white noise {b[key]:.3g}, ratio to noise {s[key] / b[key]:.3f}]")
    for key in ("centroid_wasserstein", "bandwidth_wasserstein", "silence_wasserstein"):
        print(f"{key}: {s[key]:.3g}   [floor {s[key + '_floor']:.3g}; white noise {b[key]:.3g}]")
    print(f"precision {s['precision']:.3f} recall {s['recall']:.3f}   [floor {s['precision_floor']:.3f} / {s['recall_floor']:.3f}]")
    print(f"diversity ratio {s['diversity_ratio']:.3f}, nearest-real ratio {s['nearest_real_ratio']:.3f}, copy share {s['copy_share']:.3f}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    summary = {"model": args.model, "quick": quick, "model_config": model_config, "duration": duration, "history": synth.history_, "train_wall_s": train_wall, "clips_per_s": gen_rate,
               "train_clips_per_s": scaling, "scores": report.to_dict()["scores"], "white_noise": baseline.to_dict()["scores"]}
    (out / "bench.json").write_text(json.dumps(summary, indent=2, default=float))


if __name__ == "__main__":
    main()
