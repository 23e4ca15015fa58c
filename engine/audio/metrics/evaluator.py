"""Evaluate generated clips against real recordings: spectral distances, a class judge, diversity, copies.

Every distance is reported beside its floor, the same distance between two
real sets of the same size (the held-out clips, or else the two halves of the
real set), since a Fréchet distance means little on its own: it is biased
upwards for small samples and depends on the feature space.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from engine.audio.io import AudioSet, as_audio_set, read_audio
from engine.audio.metrics.judge import AudioJudge, inception_score
from engine.audio.metrics.report import AudioReport
from engine.audio.metrics.spectral import MelOptions, mel_statistics, spectral_shape
from engine.core.errors import InvalidDataError
from engine.evaluation.distances import frechet_distance, precision_recall

EXAMPLES = 4  # clips of each set the HTML report shows and plays


def _as_set(data: Any, like: AudioSet | None, labels_from: str | None) -> AudioSet:
    if isinstance(data, AudioSet) or hasattr(data, "attrs") or hasattr(data, "schema"):
        return as_audio_set(data, like.sample_rate if like is not None else None)
    if like is None:
        raise InvalidDataError("Give the synthetic clips as an AudioSet or a sample() DataFrame so their rate and length are known.")
    return read_audio(data, sample_rate=like.sample_rate, num_samples=like.clips.shape[1], labels_from=labels_from)


def _recode(audio_set: AudioSet, names: list[str]) -> np.ndarray | None:
    """``audio_set``'s labels as indices into ``names`` (-1 for a class the real set lacks)."""
    if audio_set.labels is None:
        return None
    index = {n: i for i, n in enumerate(names)}
    return np.array([index.get(n, -1) for n in audio_set.label_names()], dtype=np.int64)


def _wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import wasserstein_distance

    return float(wasserstein_distance(a, b))


def _mean_pairwise(x: np.ndarray, limit: int, rng: np.random.Generator) -> float:
    if len(x) > limit:
        x = x[rng.choice(len(x), limit, replace=False)]
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    return float(d[np.triu_indices(len(x), 1)].mean())


def _nearest(a: np.ndarray, b: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    return d.min(axis=1)


def evaluate_audio(
    real: Any,
    synthetic: Any,
    *,
    holdout: Any = None,
    labels_from: str | None = None,
    judge: bool = True,
    judge_epochs: int = 15,
    judge_min_steps: int = 150,
    trained_judge: AudioJudge | None = None,
    max_clips: int = 2000,
    mel: MelOptions = MelOptions(),
    seed: int = 0,
) -> AudioReport:
    """An :class:`AudioReport` of ``synthetic`` clips against ``real`` recordings.

    Args:
        real: the real clips (an :class:`AudioSet`, a ``sample()``-style DataFrame, or any
            source ``read_audio`` takes, read at the synthetic clips' rate and length).
        synthetic: the generated clips (an AudioSet or the DataFrame ``sample`` returns).
        holdout: real clips the model did not train on: the floor of every distance and the
            judge's test set. Without it the real set is split in two halves.
        judge: train the class judge (needs labelled real clips of at least 2 classes).
        judge_epochs, judge_min_steps: its training (passes, and the fewest updates on a small set).
        trained_judge: a judge already trained on these real clips, used as it is (so two
            evaluations against one real set, e.g. a model and a baseline, share one judge).
        max_clips: at most this many clips of each set enter the distances (a seeded subset).
    """
    synth = _as_set(synthetic, None, labels_from)
    real_set = _as_set(real, synth, labels_from)
    if len(synth) < 2 or len(real_set) < 4:
        raise InvalidDataError(f"Evaluation needs at least 4 real and 2 synthetic clips; got {len(real_set)} and {len(synth)}.")
    if real_set.sample_rate != synth.sample_rate or real_set.clips.shape[1] != synth.clips.shape[1]:
        raise InvalidDataError(
            f"Real clips ({real_set.clips.shape[1]} samples at {real_set.sample_rate} Hz) and synthetic clips "
            f"({synth.clips.shape[1]} at {synth.sample_rate} Hz) differ; read both at one rate and length."
        )
    rng = np.random.default_rng(seed)
    rate = synth.sample_rate
    if holdout is not None:
        train, test = real_set, _as_set(holdout, synth, labels_from)
    else:
        order = rng.permutation(len(real_set))
        half = len(real_set) // 2
        pick = lambda idx: AudioSet(real_set.clips[idx], rate, None if real_set.labels is None else real_set.labels[idx], real_set.class_names)  # noqa: E731
        train, test = pick(order[:half]), pick(order[half:])
    # Distances compare sets of one size: the reference (train) against the test set, and against as many generated clips.
    n = min(len(test), len(synth), max_clips)
    test_idx = rng.choice(len(test), n, replace=False)
    synth_idx = rng.choice(len(synth), n, replace=False)
    train_idx = rng.choice(len(train), min(len(train), max_clips), replace=False)
    clips = {"train": train.clips[train_idx], "test": test.clips[test_idx], "synthetic": synth.clips[synth_idx]}

    scores: dict[str, Any] = {"num_real": len(real_set), "num_synthetic": len(synth), "num_compared": n, "sample_rate": rate}
    details: dict[str, Any] = {"floor": "held-out real clips" if holdout is not None else "the other half of the real clips"}
    stats = {k: mel_statistics(v, rate, mel) for k, v in clips.items()}
    scores["mel_frechet"] = frechet_distance(stats["train"], stats["synthetic"])
    scores["mel_frechet_floor"] = frechet_distance(stats["train"], stats["test"])

    shapes = {k: spectral_shape(v, rate, mel.n_fft, mel.hop) for k, v in clips.items()}
    for key in ("centroid", "bandwidth", "silence"):
        scores[f"{key}_wasserstein"] = _wasserstein(shapes["train"][key], shapes["synthetic"][key])
        scores[f"{key}_wasserstein_floor"] = _wasserstein(shapes["train"][key], shapes["test"][key])
        details[key] = {k: float(np.mean(v[key])) for k, v in shapes.items()}

    # Diversity and copies in standardised mel-statistics space.
    mu, sd = stats["train"].mean(0), stats["train"].std(0) + 1e-8
    z = {k: (v - mu) / sd for k, v in stats.items()}
    limit = 500
    scores["diversity_ratio"] = _mean_pairwise(z["synthetic"], limit, rng) / _mean_pairwise(z["test"], limit, rng)
    nn_synth = _nearest(z["synthetic"][:limit], z["train"])
    nn_test = _nearest(z["test"][:limit], z["train"])
    scores["nearest_real_ratio"] = float(np.median(nn_synth) / max(np.median(nn_test), 1e-12))
    close = np.quantile(_nearest(z["train"][:limit], z["train"][:limit], exclude_self=True), 0.01)
    scores["copy_share"] = float((nn_synth < close).mean())  # generated clips nearer a training clip than 99% of real pairs

    if judge and real_set.labels is not None and real_set.num_classes >= 2:
        names = list(real_set.class_names)
        model = trained_judge or AudioJudge(epochs=judge_epochs, min_steps=judge_min_steps, mel=mel, seed=seed).fit(
            clips["train"], train.labels[train_idx], rate)
        f_train, _ = model.run(clips["train"])
        f_test, p_test = model.run(clips["test"])
        f_synth, p_synth = model.run(clips["synthetic"])
        test_labels = test.labels[test_idx]
        scores["judge_accuracy_real"] = float((p_test.argmax(1) == test_labels).mean())
        synth_codes = _recode(synth, names)
        if synth_codes is not None:
            codes = synth_codes[synth_idx]
            scores["conditional_accuracy"] = float((p_synth.argmax(1) == codes).mean())
        scores["inception_score"] = inception_score(p_synth)
        scores["inception_score_real"] = inception_score(p_test)
        scores["judge_frechet"] = frechet_distance(f_train, f_synth)
        scores["judge_frechet_floor"] = frechet_distance(f_train, f_test)
        k = min(3, n - 1)
        scores["precision"], scores["recall"] = precision_recall(f_train[: len(f_test)], f_synth, k=k)
        scores["precision_floor"], scores["recall_floor"] = precision_recall(f_train[: len(f_test)], f_test, k=k)
        details["classes"] = names
    else:
        details["judge"] = "skipped: " + ("switched off" if not judge else "the real clips need labels of at least 2 classes")

    examples = {
        "real": (test.clips[test_idx[:EXAMPLES]], test.label_names() and [test.label_names()[i] for i in test_idx[:EXAMPLES]]),
        "synthetic": (synth.clips[synth_idx[:EXAMPLES]], synth.label_names() and [synth.label_names()[i] for i in synth_idx[:EXAMPLES]]),
    }
    return AudioReport(scores=scores, details=details, sample_rate=rate, examples=examples)
