"""Hyperparameters as data: the same contract for every registered model, and the rules themselves."""
from __future__ import annotations

import json
from dataclasses import MISSING, asdict, fields

import numpy as np
import pytest

from engine.core.errors import InvalidOptionError, SynthError
from engine.core.params import (
    Bool,
    Choice,
    Dims,
    Float,
    Int,
    ModelConfig,
    OrNone,
    Pair,
    Refused,
    check_model_config,
    config_owner,
    describe_parameters,
    validate_config,
)
from engine.core.registry import REGISTRY, get_model_class, modality_for_model

MODELS = sorted(REGISTRY.model_names())
# Values no rule accepts: not a number, not a string option, not a list of widths, not a pair.
WRONG_TYPES = [object(), "not-a-value", [object()], {"a": 1}]


def _config_class(model: str) -> type:
    return get_model_class(model).config_class


def _fields_of_every_model() -> list[tuple[str, str]]:
    return [(m, f.name) for m in MODELS for f in fields(_config_class(m))]


# ------------------------------------------------------------ the contract of every model
def test_the_registry_offers_the_six_engine_models():
    assert {"ctgan", "tvae", "gaussian_copula", "dcgan", "wgan_gp", "ddpm"} <= set(MODELS)


@pytest.mark.parametrize("model", MODELS)
def test_defaults_validate(model):
    config_cls = _config_class(model)
    assert issubclass(config_cls, ModelConfig)
    config = config_cls()
    validate_config(config)  # idempotent: a checked config passes again
    assert config == config_cls()
    assert check_model_config(get_model_class(model), {}, owner=model) == config


@pytest.mark.parametrize("model", MODELS)
def test_an_unknown_key_is_refused_listing_the_valid_ones(model):
    names = [f.name for f in fields(_config_class(model))]
    with pytest.raises(InvalidOptionError) as info:
        check_model_config(get_model_class(model), {"no_such_parameter": 1}, owner=model)
    assert "'no_such_parameter'" in str(info.value)
    for name in names:
        assert repr(name) in str(info.value)
    # The same through the modality's front door, before any data is read.
    front_door = modality_for_model(model).synthesizer_class()
    with pytest.raises(InvalidOptionError, match="no_such_parameter") as info:
        front_door(model, model_config={"no_such_parameter": 1})
    assert all(repr(name) in str(info.value) for name in names)


@pytest.mark.parametrize("model, name", _fields_of_every_model())
def test_a_value_of_the_wrong_type_is_refused_naming_the_field(model, name):
    config_cls = _config_class(model)
    for bad in WRONG_TYPES:
        with pytest.raises(InvalidOptionError) as info:
            config_cls(**{name: bad})
        message = str(info.value)
        assert message.startswith(f"The {name!r} parameter of {config_owner(config_cls)} must be "), message
        assert message.endswith(f"Got {bad!r} instead."), message
        # The front doors' entry point lets the named error through unchanged.
        with pytest.raises(InvalidOptionError, match=f"'{name}'"):
            check_model_config(get_model_class(model), {name: bad}, owner=model)


@pytest.mark.parametrize("model", MODELS)
def test_describe_parameters_lists_every_field(model):
    config_cls = _config_class(model)
    described = describe_parameters(config_cls)
    assert [d["name"] for d in described] == [f.name for f in fields(config_cls)]
    defaults = asdict(config_cls())
    for d in described:
        assert set(d) == {"name", "type", "rule", "default", "help"}
        assert d["type"] and d["rule"], d
        assert d["default"] == defaults[d["name"]]
    json.dumps(described)  # data the CLI and docs can print as they are


@pytest.mark.parametrize("model", MODELS)
def test_a_config_survives_json(model):
    """Saved configs come back from JSON with lists for tuples: the rules turn them back."""
    config_cls = _config_class(model)
    config = config_cls()
    assert config_cls(**json.loads(json.dumps(asdict(config)))) == config


# ------------------------------------------------------------------------- messages
@pytest.mark.parametrize(
    "model, values, message",
    [
        ("ctgan", {"pac": 0}, "The 'pac' parameter of CTGAN must be an integer >= 1. Got 0 instead."),
        ("ctgan", {"pac": True}, "The 'pac' parameter of CTGAN must be an integer >= 1. Got True instead."),
        ("ctgan", {"generator_lr": 0}, "The 'generator_lr' parameter of CTGAN must be a finite number > 0. Got 0 instead."),
        ("ctgan", {"ema_decay": 1.0}, "The 'ema_decay' parameter of CTGAN must be a finite number in [0, 1). Got 1.0 instead."),
        ("ctgan", {"betas": (0.5,)}, "The 'betas' parameter of CTGAN must be a pair of finite numbers in [0, 1). Got (0.5,) instead."),
        ("tvae", {"compress_dims": "128"},
         "The 'compress_dims' parameter of TVAE must be a list of integers >= 1 (layer widths). Got '128' instead."),
        ("gaussian_copula", {"quantile_grid": 2},
         "The 'quantile_grid' parameter of GaussianCopula must be an integer >= 3. Got 2 instead."),
        ("dcgan", {"discriminator_norm": "group"},
         "The 'discriminator_norm' parameter of DCGAN must be one of 'batch', 'layer', 'none'. Got 'group' instead."),
        ("ddpm", {"max_grad_norm": float("nan")},
         "The 'max_grad_norm' parameter of DDPM must be a finite number >= 0. Got nan instead."),
        ("ddpm", {"ema_warmup": 1}, "The 'ema_warmup' parameter of DDPM must be a boolean (True or False). Got 1 instead."),
        ("ddpm", {"sampling_steps": 0},
         "The 'sampling_steps' parameter of DDPM must be None or an integer >= 1. Got 0 instead."),
    ],
)
def test_messages_keep_scikit_learns_shape(model, values, message):
    with pytest.raises(InvalidOptionError) as info:
        _config_class(model)(**values)
    assert str(info.value) == message


def test_cross_field_checks_name_the_field_to_change():
    ddpm = _config_class("ddpm")
    with pytest.raises(InvalidOptionError, match=r"'norm_num_groups' parameter of DDPM .* does not divide 12"):
        ddpm(block_out_channels=(12, 24))
    with pytest.raises(InvalidOptionError, match=r"'attention_head_dim' parameter of DDPM .* width 64. Got 5"):
        ddpm(attention_head_dim=5)
    with pytest.raises(InvalidOptionError, match=r"'sampling_steps' parameter of DDPM .* 1\.\.250"):
        ddpm(timesteps=250, sampling_steps=251)
    with pytest.raises(InvalidOptionError, match="'discriminator_norm' parameter of WGANGP .*BatchNorm"):
        _config_class("wgan_gp")(discriminator_norm="batch")


def test_values_are_normalised():
    config = _config_class("ctgan")(generator_dims=[64, np.int64(32)], betas=[0, 1 / 2], pac=np.int32(4), gumbel_tau=1)
    assert config.generator_dims == (64, 32) and type(config.generator_dims[1]) is int
    assert config.betas == (0.0, 0.5) and all(type(b) is float for b in config.betas)
    assert type(config.pac) is int and type(config.gumbel_tau) is float
    assert _config_class("tvae")(compress_dims=[]).compress_dims == ()  # no hidden layer
    assert _config_class("ddpm")(block_out_channels=[16, 32]).block_out_channels == (16, 32)
    with pytest.raises(InvalidOptionError, match="non-empty"):
        _config_class("ddpm")(block_out_channels=[])


def test_model_config_must_be_a_mapping():
    with pytest.raises(InvalidOptionError, match="mapping"):
        check_model_config(get_model_class("ctgan"), [("pac", 2)], owner="CTGAN")  # type: ignore[arg-type]


# ----------------------------------------------------------------- the rules alone
@pytest.mark.parametrize(
    "rule, good, bad",
    [
        (Int(min=1), [1, np.int64(7)], [0, 1.0, True, "1", None]),
        (Int(min=1, max=3), [1, 3], [0, 4]),
        (Float(gt=0), [1e-9, 3], [0, -1.0, float("inf"), "1", True]),
        (Float(ge=0, le=1), [0, 1], [-1e-9, 1.1]),
        (Bool(), [True, np.bool_(False)], [1, "yes", None]),
        (Choice("a", "b"), ["a"], ["c", 1, None]),
        (Dims(), [(), [1, 2], np.array([3])], [[0], "12", 3, {1: 2}, [1.5]]),
        (Pair(Float(ge=0)), [(0, 1), [1.0, 2.0]], [(1,), (1, 2, 3), (-1, 0)]),
        (OrNone(Int(min=1)), [None, 2], [0, "x"]),
    ],
)
def test_rules(rule, good, bad):
    for value in good:
        rule.check(value)
    for value in bad:
        with pytest.raises(Refused):
            rule.check(value)
    assert rule.text() and rule.type_name


def test_a_field_without_a_rule_is_a_declaration_error():
    from dataclasses import dataclass

    @dataclass
    class BrokenConfig(ModelConfig):
        width: int = 3

    with pytest.raises(SynthError, match="'width' of Broken declares no rule"):
        BrokenConfig()


# ---------------------------------------------------------------- image front doors
def test_image_synthesizer_refuses_a_misspelt_hyperparameter():
    from engine.images.synthesizer import ImageSynthesizer

    with pytest.raises(InvalidOptionError, match="'latnet_dim'") as info:
        ImageSynthesizer("dcgan", model_config={"latnet_dim": 8})
    assert "'latent_dim'" in str(info.value) and "'discriminator_norm'" in str(info.value)


@pytest.mark.parametrize("name, hyper", [("DCGAN", "latent_dim"), ("WGANGP", "gp_weight"), ("DDPM", "timesteps")])
def test_named_image_models_refuse_a_misspelt_keyword(name, hyper):
    import engine.images.synthesizer as images

    cls = getattr(images, name)
    with pytest.raises(InvalidOptionError) as info:
        cls(**{hyper[:-1] + "x": 8})
    message = str(info.value)
    assert f"Did you mean {hyper!r}?" in message
    for f in fields(get_model_class(cls.model_name).config_class):
        assert repr(f.name) in message
    assert "'num_workers'" in message  # the front-door options are listed too


def test_named_image_models_take_hyperparameters_and_options_as_keywords():
    from engine.images.synthesizer import DCGAN, WGANGP

    gan = DCGAN(latent_dim=8, betas=[0.5, 0.99], num_workers=1, show_progress=False)
    assert gan.model_config == {"latent_dim": 8, "betas": [0.5, 0.99]}
    assert gan._config_object().betas == (0.5, 0.99)
    assert WGANGP(gp_weight=1.0, model_config={"lr": 1e-3}).model_config == {"gp_weight": 1.0, "lr": 1e-3}
    with pytest.raises(InvalidOptionError, match="'latent_dim' parameter of DCGAN must be an integer >= 1"):
        DCGAN(latent_dim=0)


def test_defaults_are_declared_once():
    """A config field's default lives in param(), so the dataclass default and the described one agree."""
    for model in MODELS:
        for f in fields(_config_class(model)):
            assert f.default is not MISSING, (model, f.name)
