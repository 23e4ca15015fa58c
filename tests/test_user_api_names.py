"""The user's API lines, working as written (no hub, no download: tiny pipelines in a fake local cache).

    StableDiffusionSynthesizer(model_id="stabilityai/stable-diffusion-2-1").generate_batch(prompts=[...], num_samples_per_prompt=100)
    ImageSynthesizer(model="stable-diffusion-v1-5", resolution=512).generate(prompt=..., num_samples=1000, guidance_scale=7.5)
    QualityEvaluator().calculate_fid(real_images=..., synthetic_images=...)

Counts, sizes and steps are scaled down for a CPU; the calls are the same.
"""
from __future__ import annotations

import numpy as np
import pytest

from engine import ImageSynthesizer, QualityEvaluator, StableDiffusionSynthesizer
from engine.core.errors import InvalidDataError, InvalidOptionError
from engine.images.pretrained.source import PretrainedModelError
from tests.test_pretrained_diffusion import STEPS, _tiny_pipeline, cache_pipeline


pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    """A Hugging Face cache holding the tiny pipeline under the two hub ids the user's lines name."""
    root = tmp_path_factory.mktemp("user-api")
    _tiny_pipeline(root).save_pretrained(root / "pipeline")
    cache = root / "hub"
    for hub_id in ("stabilityai/stable-diffusion-2-1", "stable-diffusion-v1-5/stable-diffusion-v1-5"):
        cache_pipeline(cache, hub_id, root / "pipeline")
    return cache


@pytest.fixture
def cached(hub_cache, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    # Offline, as a machine without network is: the cached copies must be enough.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return hub_cache


def _pictures(n: int, seed: int) -> np.ndarray:
    """``n`` uint8 colour pictures 32x32: a smooth background and a bright disc, each of its own colours and place."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    out = np.empty((n, 32, 32, 3), dtype=np.uint8)
    for i in range(n):
        top, bottom = rng.uniform(0, 120, 3), rng.uniform(0, 120, 3)
        background = top + (bottom - top) * (yy / 31.0)[..., None]
        cy, cx, r = rng.uniform(8, 24), rng.uniform(8, 24), rng.uniform(4, 9)
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r)[..., None]
        out[i] = np.where(disc, rng.uniform(160, 255, 3), background).astype(np.uint8)
    return out


# ------------------------------------------------------------------ the names
def test_the_names_are_exported_where_users_look():
    import engine.evaluation
    import engine.evaluation.quality
    import engine.tabular.metrics.evaluator

    assert {"StableDiffusionSynthesizer", "ImageSynthesizer", "QualityEvaluator"} <= set(engine.__all__)
    assert issubclass(StableDiffusionSynthesizer, ImageSynthesizer)
    # One class under every name, living in engine.evaluation.quality.
    assert QualityEvaluator is engine.evaluation.QualityEvaluator is engine.evaluation.quality.QualityEvaluator
    assert engine.tabular.metrics.evaluator.QualityEvaluator is QualityEvaluator  # the old import path still works
    for method in ("evaluate_tabular", "evaluate_images", "calculate_fid"):
        assert callable(getattr(QualityEvaluator(), method))


def test_engine_evaluation_imports_no_modality_package():
    import subprocess
    import sys

    code = (
        "import sys, engine.evaluation, engine.evaluation.quality; "
        "from engine.evaluation import QualityEvaluator; QualityEvaluator(); "
        "print([m for m in sys.modules if m.startswith(('engine.tabular', 'engine.images'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------ the user's lines
def test_stable_diffusion_synthesizer_generate_batch_as_written(cached):
    synth = StableDiffusionSynthesizer(model_id="stabilityai/stable-diffusion-2-1")
    result = synth.generate_batch(prompts=["a red cat", "a blue dog"], num_samples_per_prompt=3,
                                  num_inference_steps=STEPS, seed=0)
    assert result.images.shape == (6, 32, 32, 3) and result.images.dtype == np.uint8
    assert result.image_prompts == ["a red cat"] * 3 + ["a blue dog"] * 3
    assert synth.is_pretrained and synth.model_id == "stabilityai/stable-diffusion-2-1"
    assert synth.pipeline.source.from_cache and synth.pipeline.source.location == "stabilityai/stable-diffusion-2-1"
    # It is a pipeline, not a model trained here.
    with pytest.raises(InvalidOptionError, match="not trained here"):
        synth.train(np.zeros((2, 8, 8), np.uint8))


def test_image_synthesizer_short_name_and_resolution_as_written(cached):
    synth = ImageSynthesizer(model="stable-diffusion-v1-5", resolution=16)
    images = synth.generate(prompt="a red cat", num_samples=3, guidance_scale=7.5, num_inference_steps=STEPS, seed=0)
    assert images.shape == (3, 16, 16, 3) and images.dtype == np.uint8
    assert synth._pipeline.source.location == "stable-diffusion-v1-5/stable-diffusion-v1-5"


def test_short_name_not_cached_and_no_network_says_what_to_do(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(PretrainedModelError, match=r"hub id 'stable-diffusion-v1-5/stable-diffusion-v1-5'.*--local-dir"):
        ImageSynthesizer(model="stable-diffusion-v1-5", resolution=512)
    with pytest.raises(PretrainedModelError, match="hf download stabilityai/stable-diffusion-2-1 --local-dir"):
        StableDiffusionSynthesizer(model_id="stabilityai/stable-diffusion-2-1")


def test_stable_diffusion_synthesizer_refuses_what_is_not_a_pipeline():
    with pytest.raises(InvalidOptionError, match=r"'dcgan' is a model trained here.*ImageSynthesizer\(model='dcgan'\)"):
        StableDiffusionSynthesizer("dcgan")
    with pytest.raises(InvalidOptionError, match=r"'model_id' parameter of StableDiffusionSynthesizer .*Got 'not-a-model'"):
        StableDiffusionSynthesizer(model_id="not-a-model")


def test_resolution_is_image_size_for_trained_models():
    from engine import DCGAN

    assert ImageSynthesizer("dcgan", resolution=28).image_size == 28
    assert DCGAN(resolution=32).image_size == 32 and DCGAN(resolution=32).resolution == 32
    assert ImageSynthesizer("dcgan", image_size=28, resolution=28).image_size == 28
    with pytest.raises(InvalidOptionError, match="image_size=28, resolution=32"):
        ImageSynthesizer("dcgan", image_size=28, resolution=32)


# ------------------------------------------------------------------ FID
def test_calculate_fid_as_written():
    real = _pictures(12, seed=0)
    evaluator = QualityEvaluator()
    same = evaluator.calculate_fid(real_images=real, synthetic_images=real)
    assert isinstance(same, float) and same == pytest.approx(0.0, abs=1e-3)
    others = evaluator.calculate_fid(real_images=real, synthetic_images=_pictures(12, seed=1))
    noise = np.random.default_rng(2).integers(0, 256, real.shape, dtype=np.uint8)
    against_noise = evaluator.calculate_fid(real_images=real, synthetic_images=noise)
    # Pictures of the same kind are closer than noise, which is far from everything.
    assert 0.0 < others < against_noise and against_noise > 100.0
    # Grey images and another size go through the same network (grey repeated to RGB, everything resized to 299).
    grey = real.mean(axis=-1).astype(np.uint8)
    assert evaluator.calculate_fid(real_images=grey, synthetic_images=grey[:, :24, :24]) > 0.0
    # A seeded subset of each set when asked; more synthetic images than real ones are subsampled to the same size.
    assert evaluator.calculate_fid(real_images=real, synthetic_images=real, max_images=6) >= 0.0
    assert evaluator.calculate_fid(real_images=real[:8], synthetic_images=_pictures(20, seed=1)) > 0.0


def test_calculate_fid_errors_say_what_is_wrong():
    evaluator = QualityEvaluator()
    # Both sets are compared at one size (FID depends on it): too few synthetic images is refused.
    with pytest.raises(InvalidDataError, match="give at least 6 generated images .got 4."):
        evaluator.calculate_fid(real_images=_pictures(6, 0), synthetic_images=_pictures(4, 1))
    with pytest.raises(InvalidDataError, match="shape"):
        evaluator.calculate_fid(real_images=np.zeros((4, 8), np.uint8), synthetic_images=_pictures(4, 1))
    with pytest.raises(InvalidDataError, match="max_images must be an integer >= 4 .* got 1"):
        evaluator.calculate_fid(real_images=_pictures(4, 0), synthetic_images=_pictures(4, 1), max_images=1)


def test_evaluate_images_delegates_to_the_image_metrics():
    real, other = _pictures(24, seed=0), _pictures(24, seed=1)
    report = QualityEvaluator(seed=3).evaluate_images(
        real_images=real[:12], synthetic_images=other[:12], holdout_images=real[12:], inception=False, domain_epochs=1,
    )
    assert report.inception is None and report.domain is not None
    assert report.domain.fid > 0 and report.domain.fid_floor is not None and report.num_compared == 12
