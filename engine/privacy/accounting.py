"""Privacy accounting for DP-SGD on Opacus' accountants (RDP or PRV), and the budget ledger.

Training is DP-SGD with Poisson sampling: every step each row joins the batch with
probability ``sample_rate``, per-sample gradients are clipped to ``max_grad_norm`` and
Gaussian noise of standard deviation ``noise_multiplier * max_grad_norm`` is added.
Opacus' accountants turn ``(noise_multiplier, sample_rate, steps)`` into ``(epsilon, delta)``;
this module solves the two inverse questions the front door asks (the noise for a target
epsilon, the steps a noise level affords) and keeps a :class:`PrivacyLedger` of every
release (preprocessing, noisy counts, training) whose total, by basic composition, may
never exceed the user's budget.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from engine.privacy.errors import PrivacyBudgetError

Accountant = Literal["rdp", "prv"]
ACCOUNTANTS = ("rdp", "prv")
MAX_NOISE_MULTIPLIER = 1e3  # beyond this a step teaches the model nothing: the budget is called too small


def check_budget(epsilon: Any, delta: Any, num_rows: int | None = None) -> tuple[float, float]:
    """``(epsilon, delta)`` as floats, or a :class:`PrivacyBudgetError` naming the bad value.

    ``epsilon`` must be a finite number > 0; ``delta`` in [0, 1), and below ``1 / num_rows``
    when the number of rows is known (a delta of 1/n allows releasing one whole row).
    """
    ok_eps = isinstance(epsilon, (int, float)) and not isinstance(epsilon, bool) and math.isfinite(epsilon) and epsilon > 0
    if not ok_eps:
        raise PrivacyBudgetError(f"The 'epsilon' parameter must be a finite number > 0. Got {epsilon!r} instead.")
    ok_delta = isinstance(delta, (int, float)) and not isinstance(delta, bool) and 0 <= delta < 1
    if not ok_delta:
        raise PrivacyBudgetError(f"The 'delta' parameter must be a number in [0, 1). Got {delta!r} instead.")
    if num_rows is not None and num_rows > 0 and delta >= 1.0 / num_rows:
        raise PrivacyBudgetError(
            f"The 'delta' parameter must be below 1/n = {1.0 / num_rows:.3g} for a table of n = {num_rows} rows "
            f"(a delta of 1/n allows publishing one whole row). Got {delta!r} instead; 1/n^1.1 or smaller is customary."
        )
    return float(epsilon), float(delta)


def check_accountant(name: Any) -> str:
    if name not in ACCOUNTANTS:
        from engine.core.errors import InvalidOptionError

        raise InvalidOptionError(f"The 'accountant' parameter must be one of 'rdp', 'prv'. Got {name!r} instead.")
    return str(name)


def epsilon_spent(*, noise_multiplier: float, sample_rate: float, steps: int, delta: float, accountant: str = "rdp") -> float:
    """The epsilon of ``steps`` DP-SGD steps at ``delta`` (0 for no step), as Opacus' accountant computes it."""
    if steps <= 0:
        return 0.0
    if noise_multiplier <= 0:
        return math.inf
    from opacus.accountants import create_accountant

    acc = create_accountant(mechanism=check_accountant(accountant))
    acc.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    return float(acc.get_epsilon(delta=delta))


def noise_multiplier_for(*, epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str = "rdp") -> float:
    """The smallest noise multiplier (to 0.01 in epsilon) whose ``steps`` steps spend at most ``epsilon``."""
    from opacus.accountants.utils import get_noise_multiplier

    try:
        sigma = float(
            get_noise_multiplier(
                target_epsilon=epsilon, target_delta=delta, sample_rate=sample_rate, steps=int(steps),
                accountant=check_accountant(accountant), epsilon_tolerance=0.01,
            )
        )
    except ValueError:
        sigma = math.inf
    return sigma


def max_steps_within(
    *, epsilon: float, delta: float, noise_multiplier: float, sample_rate: float, accountant: str = "rdp", limit: int = 10**7
) -> int:
    """The most steps at ``noise_multiplier`` whose epsilon stays at or below ``epsilon`` (0 if not even one)."""
    if epsilon_spent(noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=1, delta=delta, accountant=accountant) > epsilon:
        return 0
    if epsilon_spent(noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=limit, delta=delta, accountant=accountant) <= epsilon:
        return limit  # the common case: the noise was solved for these steps
    lo, hi = 1, 2
    while hi <= limit and epsilon_spent(noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=hi, delta=delta, accountant=accountant) <= epsilon:
        lo, hi = hi, hi * 2
    hi = min(hi, limit + 1)
    while hi - lo > 1:  # epsilon grows with the steps: bisect the last affordable one
        mid = (lo + hi) // 2
        if epsilon_spent(noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=mid, delta=delta, accountant=accountant) <= epsilon:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass
class TrainingPlan:
    """How DP-SGD will spend its share of the budget: what the accountant was asked and answered."""

    epsilon: float  # the training share of the budget
    delta: float
    sample_rate: float
    steps: int
    noise_multiplier: float
    max_grad_norm: float
    accountant: str
    steps_requested: int

    @property
    def epsilon_planned(self) -> float:
        return epsilon_spent(
            noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate, steps=self.steps, delta=self.delta, accountant=self.accountant
        )

    def model_config(self, noise_seed: int) -> dict[str, Any]:
        """The DP-SGD fields of a DP model's config (noise, clipping, sampling rate, the step cap)."""
        return {"noise_multiplier": self.noise_multiplier, "max_grad_norm": self.max_grad_norm, "sample_rate": self.sample_rate,
                "max_private_steps": self.steps, "noise_seed": noise_seed}

    def spend(self, ledger: PrivacyLedger, steps_done: int, what: str) -> float:
        """Record on ``ledger`` the epsilon of the ``steps_done`` steps actually taken (with this plan's delta); return it."""
        eps = epsilon_spent(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate, steps=steps_done, delta=self.delta,
                            accountant=self.accountant)
        ledger.spend(f"{what} ({steps_done} steps, {self.accountant.upper()} accountant)", eps, self.delta)
        return eps


def plan_epochs(
    ledger: PrivacyLedger, *, rows: int, epochs: int, expected_batch_size: float, max_grad_norm: float, accountant: str = "rdp",
    noise_multiplier: float | None = None,
) -> TrainingPlan:
    """:func:`plan_training` for ``epochs`` passes over ``rows`` rows in Poisson batches of ``expected_batch_size``
    on average, with what is left on ``ledger``."""
    from engine.core.errors import InvalidOptionError

    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise InvalidOptionError(f"The 'epochs' parameter of DPSynthesizer.fit must be an integer >= 1. Got {epochs!r} instead.")
    sample_rate = min(1.0, expected_batch_size / rows)
    return plan_training(
        epsilon=ledger.epsilon_left, delta=ledger.delta_left, sample_rate=sample_rate, steps=max(1, int(round(epochs / sample_rate))),
        max_grad_norm=max_grad_norm, accountant=accountant, noise_multiplier=noise_multiplier,
    )


def plan_training(
    *,
    epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    max_grad_norm: float,
    accountant: str = "rdp",
    noise_multiplier: float | None = None,
    max_noise_multiplier: float = 10.0,
) -> TrainingPlan:
    """Noise and steps for DP-SGD within ``(epsilon, delta)``; training stops at the budget.

    With ``noise_multiplier`` given, the steps are cut to what the budget affords. Otherwise
    the noise is solved for ``steps``; when it would exceed ``max_noise_multiplier`` (a model
    learns little under more), the noise is set to that cap and the steps are cut instead.
    Raises :class:`PrivacyBudgetError` when not even one step fits.
    """
    if not 0 < sample_rate <= 1:
        raise PrivacyBudgetError(f"The sampling rate must be in (0, 1]. Got {sample_rate!r} instead (batch_size larger than the table?).")
    if noise_multiplier is None:
        sigma = noise_multiplier_for(epsilon=epsilon, delta=delta, sample_rate=sample_rate, steps=steps, accountant=accountant)
        if sigma > max_noise_multiplier:
            sigma = max_noise_multiplier
    else:
        sigma = float(noise_multiplier)
    affordable = max_steps_within(epsilon=epsilon, delta=delta, noise_multiplier=sigma, sample_rate=sample_rate, accountant=accountant, limit=steps)
    if affordable < 1:
        raise PrivacyBudgetError(
            f"The training budget epsilon = {epsilon:.4g} (delta = {delta:.3g}) is too small to train one step at noise "
            f"multiplier {sigma:.4g} and sampling rate {sample_rate:.4g} (one step would spend "
            f"{epsilon_spent(noise_multiplier=sigma, sample_rate=sample_rate, steps=1, delta=delta, accountant=accountant):.4g}). "
            "Raise epsilon, lower the batch size, or raise the noise multiplier."
        )
    return TrainingPlan(
        epsilon=epsilon, delta=delta, sample_rate=sample_rate, steps=min(steps, affordable), noise_multiplier=sigma,
        max_grad_norm=max_grad_norm, accountant=accountant, steps_requested=steps,
    )


@dataclass
class Release:
    """One differentially private use of the data."""

    what: str
    epsilon: float
    delta: float = 0.0


@dataclass
class PrivacyLedger:
    """Every release of one pipeline, composed by basic composition (epsilons and deltas add up).

    :meth:`spend` refuses a release that would take the total over the budget, so the pipeline
    can never exceed it, whatever order its parts run in.
    """

    epsilon: float
    delta: float
    releases: list[Release] = field(default_factory=list)

    @property
    def epsilon_spent(self) -> float:
        return math.fsum(r.epsilon for r in self.releases)  # correctly rounded: never an ulp above the true sum

    @property
    def delta_spent(self) -> float:
        return math.fsum(r.delta for r in self.releases)

    @property
    def epsilon_left(self) -> float:
        # Rounded down, so that spending all of it can never take the total an ulp over the budget.
        return max(0.0, math.nextafter(self.epsilon - self.epsilon_spent, 0.0))

    @property
    def delta_left(self) -> float:
        return max(0.0, math.nextafter(self.delta - self.delta_spent, 0.0))

    def spend(self, what: str, epsilon: float, delta: float = 0.0) -> Release:
        if math.fsum([*(r.epsilon for r in self.releases), epsilon]) > self.epsilon or math.fsum([*(r.delta for r in self.releases), delta]) > self.delta:
            raise PrivacyBudgetError(
                f"Spending epsilon = {epsilon:.4g}, delta = {delta:.3g} on {what} would exceed the budget "
                f"(epsilon = {self.epsilon:.4g}, delta = {self.delta:.3g}; already spent {self.epsilon_spent:.4g}, {self.delta_spent:.3g})."
            )
        release = Release(what, float(epsilon), float(delta))
        self.releases.append(release)
        return release

    def to_dict(self) -> dict[str, Any]:
        return {
            "epsilon": self.epsilon,
            "delta": self.delta,
            "epsilon_spent": self.epsilon_spent,
            "delta_spent": self.delta_spent,
            "composition": "basic (sum over releases)",
            "releases": [asdict(r) for r in self.releases],
        }
