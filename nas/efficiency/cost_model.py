"""Training energy known before training: predict a trial's training kWh from static features.

A trial's training work is described by :class:`TrainingWork` (its forward FLOPs per sample
and parameter count, from :func:`nas.cost.analyze_cost`, and the samples and optimiser steps
its plan trains for). Training energy is modelled as a sum of three kinds of work, each with
a non-negative price:

- ``compute``: ``3 x flops_per_sample x samples`` (forward plus a backward pass of about
  twice the forward's FLOPs), priced per GFLOP;
- ``samples``: per-sample overhead that does not scale with FLOPs (data movement, element-wise
  layers, BatchNorm, activations), priced per thousand samples;
- ``updates``: ``params x steps`` (the optimiser's per-parameter update and gradient
  zeroing), priced per million parameter-steps.

:class:`TrainingCostModel` starts from a :class:`CostPrior` (a stated default measured on a
CPU here, or the caller's) and learns the study's own prices from the trials it is told
about (:meth:`~TrainingCostModel.observe`): with fewer than ``min_fit`` observations it
scales the prior by the median ratio measured/prior; from ``min_fit`` on it fits the three
prices by non-negative least squares on relative error, then scales each family's
predictions by that family's median residual ratio once it has two observations. So the
energy per FLOP-sample that matters is always the study's, measured on its hardware, meter
and load.

Plain data and numbers only: no Optuna, no pipeline. :func:`refusal` is the 10x guard: the
reason to refuse a trial whose prediction exceeds ``max_ratio`` times the median measured
training energy of the study's trials so far. Other parts (a sampler that avoids candidates
dominated at their predicted cost) use :meth:`TrainingCostModel.predict` the same way.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nas.stats import median

J_PER_KWH = 3.6e6
FEATURES = ("compute", "activations", "samples", "updates")
# feature units: GFLOP, million activation elements, thousand samples, million param-steps
_SCALE = (1e9, 1e6, 1e3, 1e6)
Prices = tuple[float, float, float, float]


@dataclass(frozen=True, kw_only=True)
class TrainingWork:
    """What a trial's training will do, known before it runs."""

    flops_per_sample: float  # forward FLOPs of one sample (fvcore: one multiply-add = 1)
    params: int
    samples: int  # training samples seen: train size x epochs
    steps: int  # optimiser steps: epochs x ceil(train size / batch size)
    activations_per_sample: float = 0.0  # elements the layers output for one sample
    family: str = ""

    def __post_init__(self) -> None:
        for name in ("flops_per_sample", "params", "samples", "steps", "activations_per_sample"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"TrainingWork.{name} must be a finite number >= 0, got {value!r}")

    @classmethod
    def of(
        cls,
        *,
        flops_per_sample: float,
        params: int,
        train_size: int,
        epochs: int,
        batch_size: int,
        activations_per_sample: float = 0.0,
        family: str = "",
    ) -> TrainingWork:
        """The work of ``epochs`` passes over ``train_size`` samples in ``batch_size`` batches."""
        steps = epochs * max(1, math.ceil(train_size / max(batch_size, 1)))
        return cls(
            flops_per_sample=flops_per_sample,
            params=params,
            samples=train_size * epochs,
            steps=steps,
            activations_per_sample=activations_per_sample,
            family=family,
        )

    def features(self) -> Prices:
        """(GFLOP, million activation elements, thousand samples, million parameter-steps),
        forward and backward: the priced quantities."""
        n = self.samples
        raw = (
            3.0 * self.flops_per_sample * n,
            3.0 * self.activations_per_sample * n,
            n,
            self.params * self.steps,
        )
        return tuple(v / s for v, s in zip(raw, _SCALE, strict=True))  # type: ignore[return-value]


@dataclass(frozen=True, kw_only=True)
class CostPrior:
    """Prices (joules per unit of each feature) assumed before the study has measured any."""

    j_per_gflop: float
    j_per_mactivation: float
    j_per_ksample: float
    j_per_mparam_step: float
    source: str

    def prices(self) -> Prices:
        return (
            self.j_per_gflop,
            self.j_per_mactivation,
            self.j_per_ksample,
            self.j_per_mparam_step,
        )


# Fitted to training energy measured on this project's CPU machines (one thread, the estimate
# meter's 3.5 W per core + DRAM) by benchmarks/cost_model.py; any other hardware corrects it
# from its first trial on.
DEFAULT_PRIOR = CostPrior(
    j_per_gflop=0.25,
    j_per_mactivation=0.1,
    j_per_ksample=0.5,
    j_per_mparam_step=0.2,
    source="econas default: fitted on a 2-core x86 CPU, 1 thread, estimate meter "
    "(benchmarks/cost_model.py)",
)


@dataclass(frozen=True)
class CostPrediction:
    """A predicted training energy and what it rests on."""

    energy_kwh: float
    basis: str  # "prior" | "prior x study (n=3)" | "study fit (n=8)" ...
    observations: int
    prices_j: Prices  # per GFLOP, 1M activations, 1k samples, 1M param-steps

    @property
    def energy_j(self) -> float:
        return self.energy_kwh * J_PER_KWH


@dataclass
class TrainingCostModel:
    """Predicts training kWh from :class:`TrainingWork`, learning the study's prices."""

    prior: CostPrior = DEFAULT_PRIOR
    min_fit: int = 6
    _seen: list[tuple[TrainingWork, float]] = field(default_factory=list, repr=False)

    @classmethod
    def from_observations(
        cls,
        observations: Iterable[tuple[TrainingWork, float]],
        *,
        prior: CostPrior = DEFAULT_PRIOR,
        min_fit: int = 6,
    ) -> TrainingCostModel:
        model = cls(prior=prior, min_fit=min_fit)
        for work, kwh in observations:
            model.observe(work, kwh)
        return model

    @property
    def observations(self) -> int:
        return len(self._seen)

    def observe(self, work: TrainingWork, energy_kwh: float) -> None:
        """A trial's measured training energy (ignored unless finite and > 0)."""
        if energy_kwh > 0 and math.isfinite(energy_kwh):
            self._seen.append((work, float(energy_kwh)))

    def predict(self, work: TrainingWork) -> CostPrediction:
        n = len(self._seen)
        if n == 0:
            prices, basis = self.prior.prices(), "prior"
        elif n < self.min_fit:
            scale = median([kwh / _energy(w, self.prior.prices()) for w, kwh in self._seen])
            prices = tuple(p * scale for p in self.prior.prices())
            basis = f"prior x study (n={n})"
        else:
            prices, basis = fit_prices(self._seen), f"study fit (n={n})"
        kwh = _energy(work, prices)
        same = [(w, e) for w, e in self._seen if w.family == work.family and work.family]
        if n >= self.min_fit and len(same) >= 2:
            kwh *= median([e / _energy(w, prices) for w, e in same])
            basis += f", {work.family} x{len(same)}"
        return CostPrediction(
            energy_kwh=kwh,
            basis=basis,
            observations=n,
            prices_j=(prices[0], prices[1], prices[2], prices[3]),
        )


def _energy(work: TrainingWork, prices: Sequence[float]) -> float:
    """kWh of ``work`` at ``prices`` (J per feature unit); never 0 (a floor of 1 mJ)."""
    joules = sum(f * p for f, p in zip(work.features(), prices, strict=True))
    return max(joules, 1e-3) / J_PER_KWH


def fit_prices(seen: Sequence[tuple[TrainingWork, float]]) -> Prices:
    """Non-negative least squares on relative error: every subset of the features solved by
    weighted least squares, the best fit whose prices are all >= 0 kept."""
    import numpy as np

    x = np.array([w.features() for w, _ in seen], dtype=float)
    y = np.array([kwh * J_PER_KWH for _, kwh in seen], dtype=float)
    xw, yw = x / y[:, None], np.ones_like(y)  # rows scaled by 1/y: relative residuals
    best: tuple[float, Prices] | None = None
    for k in range(1, len(FEATURES) + 1):
        for cols in itertools.combinations(range(len(FEATURES)), k):
            coef, *_ = np.linalg.lstsq(xw[:, cols], yw, rcond=None)
            if (coef < 0).any():
                continue
            prices = [0.0] * len(FEATURES)
            for c, v in zip(cols, coef, strict=True):
                prices[c] = float(v)
            sse = float(((xw @ np.array(prices) - 1.0) ** 2).sum())
            if best is None or sse < best[0]:
                best = (sse, (prices[0], prices[1], prices[2], prices[3]))
    assert best is not None  # a single non-negative feature always fits (x, y > 0)
    return best[1]


def refusal(
    predicted_kwh: float, measured_kwh: Sequence[float], *, max_ratio: float = 10.0
) -> str | None:
    """Why a trial predicted to cost ``predicted_kwh`` should not train: more than
    ``max_ratio`` x the median of the study's measured training energies so far. None when
    it may train (or when nothing is measured yet)."""
    done = [e for e in measured_kwh if e > 0 and math.isfinite(e)]
    if not done:
        return None
    typical = median(done)
    ratio = predicted_kwh / typical
    if ratio <= max_ratio:
        return None
    return (
        f"predicted training energy {predicted_kwh * J_PER_KWH:.3g} J is {ratio:.1f}x the "
        f"study's median trial ({typical * J_PER_KWH:.3g} J over {len(done)} trials), above "
        f"the {max_ratio:g}x limit"
    )


def activation_elements(model: Any, input_shape: tuple[int, ...]) -> int:
    """Elements output by the leaf modules of ``model`` for one input of ``input_shape``
    (``(C, H, W)``): the memory traffic that costs time on a CPU beyond the FLOPs
    (depthwise convolutions, BatchNorm, activations, wide expanded maps). One forward pass of
    one sample in eval mode; the model's mode is restored."""
    import torch

    total = 0

    def hook(_module: Any, _inputs: Any, out: Any) -> None:
        nonlocal total
        if isinstance(out, torch.Tensor):
            total += out.numel()

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    was_training = model.training
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total
