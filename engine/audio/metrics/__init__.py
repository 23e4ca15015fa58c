"""Audio evaluation: log-mel Fréchet distance, spectral shape distances, a class judge, diversity and copies.

::

    from engine.audio.metrics import evaluate_audio
    report = evaluate_audio(real_clips, synth.sample(500, seed=0), holdout=held_out_clips)
    print(report.summary()); report.save("report/")
"""
from __future__ import annotations

from engine.audio.metrics.evaluator import evaluate_audio
from engine.audio.metrics.judge import AudioJudge, inception_score
from engine.audio.metrics.report import AudioReport
from engine.audio.metrics.spectral import MelOptions, log_mel, mel_statistics, spectral_shape

__all__ = ["AudioJudge", "AudioReport", "MelOptions", "evaluate_audio", "inception_score", "log_mel", "mel_statistics", "spectral_shape"]
