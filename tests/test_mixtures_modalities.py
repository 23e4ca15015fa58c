"""Rebalancing, augmentation, spec mixtures and per-class fidelity for images, audio and text.

Exact counts and proportions do not depend on how well a generator was
trained, so ``rebalance`` and ``augment`` are checked on front doors holding
real but untrained tiny networks (built once per module, no Ray). The one Ray
Train run of the file is the image spec run end to end through
``engine.generate``. Per-class fidelity is checked on constructed cases with a
known answer: the real samples themselves score high, the real samples with
their labels scrambled (a generator that ignores its labels) score low.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.core.errors import InvalidDataError, InvalidOptionError
from engine.core.labels import label_codes
from engine.core.mixtures import SOURCE_COLUMN

IMAGE_TINY = {"latent_dim": 16, "generator_width": 8, "discriminator_width": 8}
AUDIO_TINY = {"model_dim": 4, "layers": 3, "latent_dim": 8, "label_dim": 4, "critic_iterations": 2}
TEXT_TINY = {"n_layer": 1, "n_embd": 16, "n_head": 2, "vocab_size": 300, "block_size": 16, "dropout": 0.0, "generation_batch": 16}
SHAPES = ("top", "bottom", "left")
RATE, LENGTH = 8000, 1024
PITCHES = {"low": 400.0, "high": 2000.0}
WORDS = {"pos": "bright warm lovely joyful splendid charming".split(), "neg": "grim cold dreadful bleak gloomy dull".split()}


pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


# ------------------------------------------------------------------ data with known classes
def _shapes(counts: dict[str, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """16x16 grey images: the bright half (top, bottom, left) is the class; labels as names."""
    rng = np.random.default_rng(seed)
    labels = np.asarray([name for name, n in counts.items() for _ in range(n)])
    images = rng.integers(0, 60, (len(labels), 16, 16), dtype=np.uint8)
    for i, name in enumerate(labels):
        region = {"top": np.s_[:8, :], "bottom": np.s_[8:, :], "left": np.s_[:, :8]}[name]
        images[i][region] += 180
    return images, labels


def _tones(counts: dict[str, int], seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    labels = [name for name, n in counts.items() for _ in range(n)]
    hz = np.asarray([PITCHES[v] for v in labels]) * rng.uniform(0.97, 1.03, len(labels))
    t = np.arange(LENGTH) / RATE
    clips = 0.5 * np.sin(2 * np.pi * hz[:, None] * t + rng.uniform(0, 6, (len(labels), 1)))
    return (clips + 0.02 * rng.standard_normal(clips.shape)).astype(np.float32), labels


def _texts(counts: dict[str, int], seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = [name for name, n in counts.items() for _ in range(n)]
    return pd.DataFrame({"text": [" ".join(rng.choice(WORDS[v], size=5)) for v in labels], "label": labels})


# ------------------------------------------------------------------ front doors with untrained tiny networks
def _attach(synth, pre, labels_or_none):
    model = synth.model_class()(synth._config_object(), pre.layout)
    synth._model, synth._preprocessor = model, pre
    if labels_or_none is not None:
        counts = np.bincount(labels_or_none, minlength=pre.layout.num_classes)
        synth.class_frequencies_ = counts / counts.sum()
    return synth


@pytest.fixture(scope="module")
def image_synth():
    from engine.images.synthesizer import ImageSynthesizer
    from engine.images.transforms import ImagePreprocessor

    images, labels = _shapes({"top": 10, "bottom": 10, "left": 10})
    pre = ImagePreprocessor()
    image_set = pre.prepare(images, labels)
    pre.fit(image_set)
    return _attach(ImageSynthesizer("dcgan", model_config=IMAGE_TINY, show_progress=False), pre, image_set.labels)


@pytest.fixture(scope="module")
def audio_synth():
    from engine.audio.synthesizer import AudioSynthesizer
    from engine.audio.transforms import AudioPreprocessor

    clips, labels = _tones({"low": 4, "high": 4})
    synth = AudioSynthesizer(sample_rate=RATE, duration=LENGTH / RATE, model_config=AUDIO_TINY, show_progress=False)
    pre = AudioPreprocessor(RATE, LENGTH / RATE)
    audio_set = pre.prepare(clips, labels)
    pre.fit(audio_set)
    return _attach(synth, pre, audio_set.labels)


@pytest.fixture(scope="module")
def text_synth():
    from engine.text.models.causal_lm import CausalLMModel
    from engine.text.synthesizer import TextSynthesizer
    from engine.text.tokenization import TextTokenizer
    from engine.text.transforms import TextLayout

    corpus = _texts({"pos": 12, "neg": 12})
    synth = TextSynthesizer(model_config=TEXT_TINY, max_new_tokens=6, filter=False)
    tok = TextTokenizer.train(corpus["text"].tolist(), TEXT_TINY["vocab_size"], {"label": ["neg", "pos"]})
    layout = TextLayout(tok.vocab_size, TEXT_TINY["block_size"], tok.pad_id, tok.bos_id, tok.eos_id, 2, None)
    synth._model, synth._tokenizer = CausalLMModel(synth._config_object(), layout), tok
    synth.label_combos_ = [(["neg"], 12), (["pos"], 12)]
    return synth


# ------------------------------------------------------------------ the shared label helper
def test_label_codes_accept_names_and_indices_and_name_what_is_known():
    names = ["3", "7", "cat"]
    assert label_codes(["cat", 7, "3", 1], names).tolist() == [2, 1, 0, 1]  # 7 is the class "7"; 1 is an index
    with pytest.raises(InvalidDataError, match=r"Unknown label 'dog'; the classes are 3, 7, cat \(or an index 0..2\)"):
        label_codes(["dog"], names)
    with pytest.raises(InvalidDataError, match="Unknown label 5"):
        label_codes([5], names)
    with pytest.raises(InvalidDataError, match="trained without labels"):
        label_codes(["a"], [])


# ------------------------------------------------------------------ rebalance: exact counts per class
def test_rebalance_gives_exact_counts_per_class_for_images_audio_and_text(image_synth, audio_synth, text_synth):
    images = image_synth.rebalance("label", 40, ratios={"top": 0.5, "bottom": 0.25, "left": 0.25}, seed=0)
    assert images.images.shape == (40, 16, 16, 1)
    names = [images.class_names[k] for k in images.labels]
    assert {v: names.count(v) for v in SHAPES} == {"top": 20, "bottom": 10, "left": 10}
    equal = image_synth.rebalance("label", 31, seed=1)  # no ratios: every class equally often
    assert sorted(np.bincount(equal.labels).tolist()) == [10, 10, 11]

    clips = audio_synth.rebalance("label", 10, ratios={"low": 0.7, "high": 0.3}, seed=0)
    assert list(clips.columns) == ["audio", "label"] and clips.attrs["sample_rate"] == RATE
    assert clips["label"].value_counts().to_dict() == {"low": 7, "high": 3}

    texts = text_synth.rebalance("label", 12, ratios={"pos": 1, "neg": 3}, seed=0)
    assert list(texts.columns) == ["text", "label"] and texts["label"].value_counts().to_dict() == {"neg": 9, "pos": 3}

    with pytest.raises(InvalidDataError, match="Unknown label 'mid'; the classes are high, low"):
        audio_synth.rebalance("label", 4, ratios={"mid": 1.0}, seed=0)
    with pytest.raises(InvalidOptionError, match="one column, 'label'.*got 'colour'"):
        image_synth.rebalance("colour", 4, seed=0)
    with pytest.raises(InvalidOptionError, match="Unknown label column 'topic'.*'label'"):
        text_synth.rebalance("topic", 4, seed=0)


# ------------------------------------------------------------------ augment: counts and proportions
def test_augment_images_keeps_or_balances_class_proportions(image_synth):
    real = _shapes({"top": 15, "bottom": 10, "left": 5}, seed=3)
    kept = image_synth.augment(real, 2.0, target="label", preserve_distribution=True, seed=0)
    source = kept.extra[SOURCE_COLUMN]
    assert len(kept) == 60 and source.tolist() == ["real"] * 30 + ["synthetic"] * 30
    assert np.array_equal(kept.images[:30, ..., 0], real[0])  # the real images first, unchanged
    names = np.asarray(kept.class_names)[kept.labels]
    assert {v: int(np.sum(names[30:] == v)) for v in SHAPES} == {"top": 15, "bottom": 10, "left": 5}

    balanced = image_synth.augment(real, 2.0, target="label", preserve_distribution=False, seed=0)
    names = np.asarray(balanced.class_names)[balanced.labels]
    assert {v: int(np.sum(names == v)) for v in SHAPES} == {"top": 20, "bottom": 20, "left": 20}
    assert {v: int(np.sum(names[balanced.extra[SOURCE_COLUMN] == "synthetic"] == v)) for v in SHAPES} == {
        "top": 5, "bottom": 10, "left": 15}


def test_augment_audio_keeps_or_balances_class_proportions(audio_synth):
    clips, labels = _tones({"low": 8, "high": 4}, seed=5)
    real = pd.DataFrame({"audio": list(clips), "label": labels})
    real.attrs["sample_rate"] = RATE
    kept = audio_synth.augment(real, 1.5, target="label", preserve_distribution=True, seed=0)
    assert len(kept) == 18 and kept.attrs["sample_rate"] == RATE
    synthetic = kept[kept[SOURCE_COLUMN] == "synthetic"]
    assert synthetic["label"].value_counts().to_dict() == {"low": 4, "high": 2}
    assert np.allclose(np.stack(kept["audio"][:12]), clips, atol=1e-4)  # the real clips (WAV round trip)

    balanced = audio_synth.augment(real, 1.5, target="label", preserve_distribution=False, seed=0)
    assert balanced["label"].value_counts().to_dict() == {"low": 9, "high": 9}


# ------------------------------------------------------------------ per-class fidelity: known answers
def _scrambled(labels, seed: int = 0) -> np.ndarray:
    # A derangement by class: every sample carries a class it does not show (a generator ignoring its labels, at worst).
    labels = np.asarray(labels)
    classes = sorted(set(labels.tolist()))
    return np.asarray([classes[(classes.index(v) + 1) % len(classes)] for v in labels])


def test_image_class_fidelity_high_for_real_images_low_for_scrambled_labels(image_synth):
    from engine.images.io import ImageSet

    images, labels = _shapes({"top": 12, "bottom": 12, "left": 12}, seed=7)
    same = image_synth.class_fidelity((images, labels), (images, labels), "label", min_steps=40)
    assert set(same) == set(SHAPES) and all(0.0 <= v <= 1.0 for v in same.values())
    assert min(same.values()) >= 0.9
    codes = label_codes(_scrambled(labels).tolist(), image_synth.class_names)
    wrong = image_synth.class_fidelity((images, labels), ImageSet(images[..., None], codes, image_synth.class_names), "label",
                                       min_steps=40)
    assert set(wrong) == set(SHAPES) and max(wrong.values()) <= 0.2


def test_audio_class_fidelity_high_for_real_clips_low_for_scrambled_labels(audio_synth):
    clips, labels = _tones({"low": 10, "high": 10}, seed=9)
    real = pd.DataFrame({"audio": list(clips), "label": labels})
    real.attrs["sample_rate"] = RATE
    fake = real.assign(label=_scrambled(labels))
    same = audio_synth.class_fidelity(real, real, "label", epochs=1, min_steps=60)
    wrong = audio_synth.class_fidelity(real, fake, "label", epochs=1, min_steps=60)
    assert set(same) == set(wrong) == {"low", "high"} and all(0.0 <= v <= 1.0 for v in [*same.values(), *wrong.values()])
    assert min(same.values()) >= 0.9 and max(wrong.values()) <= 0.2


def test_text_class_fidelity_high_for_real_texts_low_for_scrambled_labels(text_synth):
    real = _texts({"pos": 15, "neg": 15}, seed=11)
    same = text_synth.class_fidelity(real, real, "label")
    wrong = text_synth.class_fidelity(real, real.assign(label=_scrambled(real["label"])), "label")
    assert same == {"neg": 1.0, "pos": 1.0} and set(wrong) == {"neg", "pos"} and max(wrong.values()) <= 0.2


# ------------------------------------------------------------------ a spec with a mixture, end to end (the one Ray run)
def test_image_spec_mixture_is_honoured_with_per_class_fidelity_in_the_card(ray_session, tmp_path):
    from engine import generate

    images, labels = _shapes({"top": 20, "bottom": 20, "left": 20})
    data = tmp_path / "shapes.npz"
    np.savez(data, x=images, y=labels)
    spec = {
        "data": str(data), "model": "dcgan", "hyperparameters": IMAGE_TINY, "epochs": 1, "num_rows": 30, "seed": 3,
        "mixture": {"label": {"top": 0.5, "bottom": 0.3, "left": 0.2}},
        "evaluation": {"full_report": False}, "output": {"path": str(tmp_path / "out")},
    }
    result = generate(spec)
    names = json.loads(result.table.schema.metadata[b"huggingface"])["info"]["features"]["label"]["names"]
    got = pd.Series([names[k] for k in result.table.column("label").to_pylist()]).value_counts().to_dict()
    assert result.num_rows == 30 and got == {"top": 15, "bottom": 9, "left": 6}
    card = json.loads((tmp_path / "dataset_card.json").read_text())
    fidelity = card["evaluation"]["per_class_fidelity"]
    assert fidelity["column"] == "label" and set(fidelity["scores"]) == set(SHAPES)
    assert all(0.0 <= v <= 1.0 for v in fidelity["scores"].values())
