"""Diffusion helpers shared by the models that train on a diffusers noise schedule."""
from __future__ import annotations

import inspect
from typing import Any

from diffusers import DDIMScheduler, SchedulerMixin


def ddim_scheduler(training_scheduler: SchedulerMixin, steps: int, **overrides: Any) -> DDIMScheduler:
    """A DDIM sampler with ``steps`` steps on the noise schedule ``training_scheduler`` was trained with.

    ``overrides`` set DDIM options on top of the training schedule's (e.g. ``timestep_spacing``).
    """
    # Only the keys DDIM knows (DDPM's variance_type is not one): from_config warns about the rest.
    known = inspect.signature(DDIMScheduler.__init__).parameters
    config = {k: v for k, v in training_scheduler.config.items() if k in known}
    # With alpha_0 = 1 the last step returns the predicted x0 itself, not a slightly noisy one.
    scheduler = DDIMScheduler.from_config(config, **{"set_alpha_to_one": True, **overrides})
    scheduler.set_timesteps(steps)
    return scheduler
