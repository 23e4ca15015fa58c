"""Image models through the front door: DCGAN and WGAN-GP maths, the Ray Train loop, DDPM, sampling, CLI."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from engine.core.errors import InvalidDataError
from engine.images.synthesizer import DCGAN, DDPM, WGANGP, ImageSynthesizer
from engine.images import read_images, save_dataset
from engine.images.models.dcgan import DCGANModel
from engine.images.models.dcgan import DCGANConfig
from engine.images.models.wgan_gp import WGANGPModel
from engine.images.models.wgan_gp import WGANGPConfig
from engine.training.config import InvalidOptionError
from engine.images.transforms import ImagePreprocessor
from tests.conftest import SHARED_DATA

MNIST = SHARED_DATA / "images" / "mnist.npz"
TINY = {"latent_dim": 16, "generator_width": 8, "discriminator_width": 8}


@pytest.fixture(scope="module")
def mnist_small() -> tuple[np.ndarray, np.ndarray]:
    if not MNIST.exists():
        pytest.skip(f"MNIST is not at {MNIST} (see ../shared/data/README.md)")
    with np.load(MNIST) as z:
        return z["x_train"][:1024], z["y_train"][:1024].astype(np.int64)


def _mean_image_gap(images: np.ndarray, real: np.ndarray) -> float:
    """Mean absolute difference of the average image: a blunt, cheap distance that untrained generators fail."""
    return float(np.abs(images.astype(np.float64).mean(0) - real.astype(np.float64).mean(0)).mean())


@pytest.mark.parametrize(
    "model_cls, config, steps",
    [
        (DCGANModel, DCGANConfig(latent_dim=32, generator_width=16, discriminator_width=16), 160),
        (WGANGPModel, WGANGPConfig(latent_dim=32, generator_width=16, discriminator_width=16, critic_iterations=2, lr=5e-4), 80),
    ],
    ids=["dcgan", "wgan_gp"],
)
def test_a_few_training_steps_move_generated_images_towards_the_data(mnist_small, model_cls, config, steps):
    torch.manual_seed(0)
    x, y = mnist_small
    pre = ImagePreprocessor()
    prepared = pre.prepare(x, y)
    rows = pre.fit(prepared).transform(prepared)
    model = model_cls(config, pre.layout)
    optimizers = model.configure_optimizers()
    step_gen = torch.Generator().manual_seed(0)
    labels = np.arange(256) % 10

    def gap() -> float:
        generated = pre.pixels_to_uint8(model.generate(256, labels, torch.Generator().manual_seed(1)))
        return _mean_image_gap(generated, x)

    before = gap()
    batches = model.batch_sampler(rows, 32, np.random.default_rng(0))
    history: list[dict[str, float]] = []
    while len(history) < steps:
        for batch in batches.epoch():
            history.append(model.train_step(batch, optimizers, step_gen))
            if len(history) == steps:
                break
    assert all(np.isfinite(v) for row in history for v in row.values())
    after = gap()
    # Untrained generators paint mid-grey everywhere; MNIST is black with white strokes in the middle.
    assert after < 0.6 * before, (before, after)

    # The losses as well, but only the one that is a reliable signal this early. A GAN's losses are a
    # game, not an objective: the generator's loss *rises* while it improves, because the discriminator
    # improves faster (DCGAN loss_g went 0.75 -> 4.5 here over 3 seeds), and over long training every
    # loss oscillates. What does move one way in the first steps, for every seed tried, is the
    # discriminator's: the DCGAN's falls from chance (0.9-1.0) to under 0.11, and WGAN-GP's critic
    # estimate of the Wasserstein distance rises from 1-3.5 to 16-19 (it declines later, as the
    # generator catches up, which is the curve in Gulrajani et al.). Either would fail if the
    # discriminator's step had the wrong sign or did not learn.
    key = "loss_d" if model_cls is DCGANModel else "wasserstein"
    eighth = steps // 8
    first = float(np.mean([row[key] for row in history[:eighth]]))
    last = float(np.mean([row[key] for row in history[-eighth:]]))
    if key == "loss_d":
        assert last < 0.5 * first, (first, last)
    else:
        assert last > 2.0 * first, (first, last)


def _within_class_std(rows: np.ndarray, labels: np.ndarray) -> float:
    """Mean per-pixel standard deviation across the images of one class, averaged over classes."""
    return float(np.mean([rows[labels == k].std(axis=0).mean() for k in np.unique(labels)]))


def test_conditional_dcgan_uses_its_noise_within_each_class(mnist_small):
    # Regression: with the label embedding started on the noise's scale, the generator drew one
    # image per class whatever z was (within-class spread ~0.05 against ~0.3 for real digits).
    torch.manual_seed(0)
    x, y = mnist_small
    pre = ImagePreprocessor()
    prepared = pre.prepare(x, y)
    rows = pre.fit(prepared).transform(prepared)
    model = DCGANModel(DCGANConfig(latent_dim=32, generator_width=16, discriminator_width=16), pre.layout)
    optimizers, step_gen = model.configure_optimizers(), torch.Generator().manual_seed(0)
    batches, done = model.batch_sampler(rows, 64, np.random.default_rng(0)), 0
    while done < 200:
        for batch in batches.epoch():
            model.train_step(batch, optimizers, step_gen)
            done += 1
            if done == 200:
                break
    labels = np.arange(200) % 10
    generated = model.generate(200, labels, torch.Generator().manual_seed(1))[:, :-1]
    real_spread = _within_class_std(rows[:, :-1], rows[:, -1])
    assert _within_class_std(generated, labels) > 0.3 * real_spread


def test_wgan_gp_rejects_batchnorm_in_the_critic():
    with pytest.raises(ValueError, match="BatchNorm"):
        WGANGPConfig(discriminator_norm="batch")


def test_odd_image_sizes_are_refused_before_training():
    with pytest.raises(InvalidDataError, match="even size"):
        DCGANModel(DCGANConfig(), ImagePreprocessor().fit(ImagePreprocessor().prepare(np.zeros((2, 9, 9), np.uint8))).layout)


@pytest.fixture(scope="module")
def trained_dcgan(ray_session, mnist_small, tmp_path_factory):
    x, y = mnist_small
    gan = DCGAN(**TINY, show_progress=False).train(x[:512], labels=y[:512], epochs=1, batch_size=64)
    path = tmp_path_factory.mktemp("models") / "dcgan"
    gan.save(path)
    return gan, path


def test_conditional_generation_returns_exactly_the_requested_labels(trained_dcgan):
    gan, _ = trained_dcgan
    result = gan.sample(labels={"3": 5, 7: 2}, seed=1)
    assert result.images.shape == (7, 28, 28, 1) and result.images.dtype == np.uint8
    assert result.labels.tolist() == [3] * 5 + [7] * 2
    assert gan.generate(num_samples=9, labels="4", seed=0).shape == (9, 28, 28, 1)
    mix = gan.sample(500, seed=2)
    assert len(mix) == 500 and len(np.unique(mix.labels)) == 10  # the training class mix, not one class
    with pytest.raises(InvalidDataError, match="the classes are"):
        gan.generate(num_samples=2, labels="eleven")
    with pytest.raises(InvalidDataError, match="one label per image"):
        gan.generate(num_samples=3, labels=[1, 2])


def test_evaluate_scores_fresh_samples_against_real_and_held_out_images(trained_dcgan, mnist_small):
    gan, _ = trained_dcgan
    x, y = mnist_small
    report = gan.evaluate(x[:512], y[:512], holdout=x[512:], holdout_labels=y[512:], max_images=200,
                          inception=False, domain_epochs=1)
    assert report.num_compared == 200 and report.details["num_synthetic"] == 200
    assert report.domain.fid > report.domain.fid_floor  # one tiny epoch is far from the real digits
    assert 0.0 <= report.conditional_accuracy <= 1.0 and set(report.per_class_accuracy) <= {str(k) for k in range(10)}
    with pytest.raises(InvalidOptionError, match="Unknown generation option"):
        gan.evaluate(x[:64], y[:64], inception=False, max_images=32, generate_options={"steps": 3})


def test_same_seed_same_images_and_save_load_round_trip(trained_dcgan):
    gan, path = trained_dcgan
    a = gan.generate(16, seed=5)
    assert np.array_equal(a, gan.generate(16, seed=5))
    assert not np.array_equal(a, gan.generate(16, seed=6))
    loaded = ImageSynthesizer.load(path)
    assert isinstance(loaded, ImageSynthesizer) and loaded.class_names == gan.class_names
    assert np.array_equal(loaded.generate(16, seed=5), a)


def test_sharded_sampling_writes_the_same_images_with_one_or_two_actors(trained_dcgan, tmp_path):
    from engine.batch.sharded import sample_to_parquet

    _, path = trained_dcgan
    one = sample_to_parquet(path, tmp_path / "one", num_rows=250, rows_per_shard=100, seed=3, num_actors=1)
    two = sample_to_parquet(path, tmp_path / "two", num_rows=250, rows_per_shard=100, seed=3, num_actors=2)
    assert one.num_rows == two.num_rows == 250
    for f1, f2 in zip(one.files, two.files):
        assert pq.read_table(f1).equals(pq.read_table(f2))
    sevens = sample_to_parquet(path, tmp_path / "sevens", num_rows=40, rows_per_shard=25, seed=3, conditions="7")
    assert sevens.num_rows == 40 and sevens.written_shards == [0, 1]
    back = read_images(tmp_path / "sevens")
    assert len(back) == 40 and set(back.labels.tolist()) == {7} and back.class_names[7] == "7"


def test_sharded_sampling_refuses_label_counts_on_the_driver(trained_dcgan, tmp_path):
    # Regression: a {label: count} mapping passed the driver's check and then failed in every shard's actor.
    from engine.batch.sharded import sample_to_parquet

    _, path = trained_dcgan
    for conditions in ({"3": 5, "7": 5}, ["3", "7"]):
        with pytest.raises(InvalidDataError, match="one label for every image"):
            sample_to_parquet(path, tmp_path / "counts", num_rows=10, rows_per_shard=5, conditions=conditions)
        assert not (tmp_path / "counts").exists()  # refused before any actor started or any file was written
    with pytest.raises(InvalidDataError, match="the classes are"):
        sample_to_parquet(path, tmp_path / "unknown", num_rows=10, conditions="eleven")


def test_num_samples_must_be_a_positive_integer(trained_dcgan):
    gan, _ = trained_dcgan
    for bad in (0, -1, 2.5, True, None):
        with pytest.raises(InvalidOptionError, match=rf"'num_samples' parameter must be an integer >= 1. Got {bad!r}"):
            gan.generate(num_samples=bad)
    with pytest.raises(InvalidOptionError, match="'num_samples'.*Got 0"):
        gan.generate(num_samples=0, labels=[])
    with pytest.raises(InvalidDataError, match="no image at all"):
        gan.sample(labels={"3": 0, "7": 0})
    assert gan.sample(labels={"3": 0, "7": 2}, seed=0).labels.tolist() == [7, 7]  # one label may be asked 0 times


def test_unconditional_model_from_a_folder_and_its_errors(ray_session, mnist_small, tmp_path):
    x, _ = mnist_small
    save_dataset(x[:128], tmp_path / "digits", format="folder")
    gan = ImageSynthesizer("dcgan", image_size=16, model_config=TINY, show_progress=False)
    gan.fit(tmp_path / "digits", epochs=1, batch_size=32)
    assert gan.class_names == []
    assert gan.generate(5, seed=0).shape == (5, 16, 16, 1)
    with pytest.raises(InvalidDataError, match="without labels"):
        gan.generate(5, labels=3)
    with pytest.raises(InvalidOptionError, match="prompt"):
        gan.generate(5, prompt="a digit")
    with pytest.raises(InvalidOptionError, match="Unknown generation option"):
        gan.generate(5, steps=50)


def test_wgan_gp_trains_data_parallel_on_two_workers_with_shards_smaller_than_its_critic_iterations(ray_session, mnist_small):
    """Two DDP workers: the gradient penalty's double backward and the bare-critic generator step under DDP,
    each on a shard of 3 images for 5 critic iterations (one Ray Train run for both)."""
    # Regression: 3 images and 5 critic steps gave batches of 1 but only 3 indices for 5 steps, and the
    # sampler's reshape failed.
    from engine.images.models.batches import ImageBatches

    x, y = mnist_small
    rows = np.zeros((3, 4 * 4 + 1), np.float32)
    images, labels = next(ImageBatches(rows, (1, 4, 4), 64, np.random.default_rng(0), steps_per_batch=5).epoch())
    assert images.shape == (5, 1, 1, 4, 4) and labels.shape == (5, 1)
    wgan = WGANGP(critic_iterations=5, gp_weight=10, **TINY, num_workers=2, cpus_per_worker=1, show_progress=False)
    wgan.train(x[:6], labels=y[:6], epochs=1, batch_size=64)
    assert len(wgan.history_) == 1
    assert all(np.isfinite(wgan.history_[-1][k]) for k in ("wasserstein", "gradient_penalty", "loss_g"))
    assert wgan.generate(4, labels=int(y[0]), seed=0).shape == (4, 28, 28, 1)


def test_unknown_model_names_are_not_mistaken_for_hub_ids():
    with pytest.raises(InvalidOptionError, match="'dcgan', 'wgan_gp'"):
        ImageSynthesizer("dcgna")


def test_cli_fits_samples_and_describes_an_image_model(ray_session, mnist_small, tmp_path, capsys):
    from engine.cli import main

    x, y = mnist_small
    save_dataset(x[:200], tmp_path / "data.parquet.d", y[:200])
    model_dir = tmp_path / "model"
    args = ["fit", str(tmp_path / "data.parquet.d"), "--model", "dcgan", "--out", str(model_dir), "--epochs", "1",
            "--batch-size", "32", "--image-size", "16", "--model-config", '{"latent_dim": 8, "generator_width": 8, "discriminator_width": 8}', "--quiet"]
    assert main(args) == 0
    assert main(["sample", str(model_dir), "--rows", "12", "--label", "5", "--out", str(tmp_path / "fives")]) == 0
    fives = read_images(tmp_path / "fives")
    assert fives.images.shape == (12, 16, 16, 1) and set(fives.labels.tolist()) == {5}
    # --condition is the same flag for every modality: an image's condition is its label (--label is an alias).
    assert main(["sample", str(model_dir), "--rows", "6", "--condition", "label=3",
                 "--out", str(tmp_path / "threes")]) == 0
    threes = read_images(tmp_path / "threes")
    assert threes.images.shape == (6, 16, 16, 1) and set(threes.labels.tolist()) == {3}
    capsys.readouterr()
    assert main(["info", str(model_dir)]) == 0
    card = json.loads(capsys.readouterr().out)  # the model card, as JSON alone
    assert card["modality"] == "image" and card["image"]["height"] == 16 and "3" in card["classes"]
    assert main(["sample", str(model_dir), "--rows", "2", "--condition", "a=b", "--out", str(tmp_path / "x")]) == 2
    assert "label=CLASS" in capsys.readouterr().err
    # Options of another modality are refused by name, before any work.
    assert main(["sample", str(model_dir), "--rows", "2", "--precision", "float32", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "--precision is an option of the table modality" in err and "'dcgan'" in err
    assert main(["sample", str(model_dir), "--rows", "2", "--format", "csv", "--out", str(tmp_path / "x")]) == 2
    assert "'parquet', 'folder'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_ddpm_trains_through_the_loop_and_samples_by_label_with_ddim(ray_session, mnist_small, tmp_path):
    x, y = mnist_small
    ddpm = DDPM(image_size=16, block_out_channels=(16, 32), layers_per_block=1, show_progress=False)
    ddpm.train(x[:256], labels=y[:256], epochs=1, batch_size=32)
    first = ddpm.sample(labels={"1": 3, "2": 1}, seed=0, sampler="ddim", steps=5)
    assert first.images.shape == (4, 16, 16, 1) and first.labels.tolist() == [1, 1, 1, 2]
    ddpm.save(tmp_path / "ddpm")
    again = ImageSynthesizer.load(tmp_path / "ddpm").sample(labels={"1": 3, "2": 1}, seed=0, sampler="ddim", steps=5)
    assert np.array_equal(first.images, again.images)
