"""Training energy known before training: predict a trial's training kWh from static features.

A trial's training work is described by :class:`TrainingWork`: its forward FLOPs per sample
and parameter count (:func:`nas.cost.analyze_cost`), the elements its forward pass creates and the torch functions it calls
(:func:`forward_work`), and the samples and optimiser steps its plan trains for.
Training energy is modelled as a sum of five kinds of work, each with a non-negative price:

- ``compute``: ``3 x flops_per_sample x samples`` (forward plus a backward pass of about
  twice the forward's FLOPs), priced per GFLOP;
- ``activations``: ``3 x activations_per_sample x samples``, the memory traffic a CPU pays
  for beyond FLOPs (depthwise convolutions, BatchNorm, wide expanded maps, element-wise
  products), priced per million elements;
- ``samples``: per-sample overhead (batching, the loss, Python per step), per 1,000 samples;
- ``updates``: ``params x steps`` (the optimiser's update), per million parameter-steps;
- ``dispatch``: ``3 x calls_per_step x steps``, the torch functions one forward pass calls
  (convolutions, norms, activations, additions...; the backward and the optimiser step
  roughly double it), per 1,000 calls: the fixed cost of every operator call, whatever its
  size, which decides the energy of the small networks a CPU proxy trains (a squeeze-excite
  or residual block costs its calls, not its FLOPs).

:class:`TrainingCostModel` starts from a :class:`CostPrior` (a stated default fitted on this
project's CPU machines, or the caller's) and learns from the study's own trials
(:meth:`~TrainingCostModel.observe`, in the order they ran): every prediction is scaled by
the median measured/predicted ratio of the latest ``recent`` trials (the same work draws
more energy on a busier machine, and the load drifts), and from ``min_fit`` trials on the
four prices are refitted to the study's trials by non-negative least squares on relative
error. So the energy per FLOP-sample that matters is the study's, on its hardware and meter.
``benchmarks/cost_model.py`` measures the error.

Plain data and numbers only: no Optuna, no pipeline, torch imported only by
:func:`activation_elements`. :func:`refusal` is the 10x guard: the reason to refuse a trial
whose prediction exceeds ``max_ratio`` times the median measured training energy of the
study's trials so far. A sampler that avoids candidates dominated at their predicted cost
uses :meth:`TrainingCostModel.predict` the same way.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nas.stats import median
from nas.text import plural

J_PER_KWH = 3.6e6
FEATURES = ("compute", "activations", "samples", "updates", "dispatch")
# feature units: GFLOP, million activation elements, thousand samples, million param-steps,
# thousand operator calls
_SCALE = (1e9, 1e6, 1e3, 1e6, 1e3)
Prices = tuple[float, float, float, float, float]


@dataclass(frozen=True, kw_only=True)
class TrainingWork:
    """What a trial's training will do, known before it runs."""

    flops_per_sample: float  # forward FLOPs of one sample (fvcore: one multiply-add = 1)
    params: int
    samples: int  # training samples seen: train size x epochs
    steps: int  # optimiser steps: epochs x ceil(train size / batch size)
    activations_per_sample: float = 0.0  # elements the layers output for one sample
    calls_per_step: float = 0.0  # torch functions one forward pass calls (0: not known)
    family: str = ""

    def __post_init__(self) -> None:
        for name in (
            "flops_per_sample",
            "params",
            "samples",
            "steps",
            "activations_per_sample",
            "calls_per_step",
        ):
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
        calls_per_step: float = 0.0,
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
            calls_per_step=calls_per_step,
            family=family,
        )

    def features(self) -> Prices:
        """(GFLOP, million activation elements, thousand samples, million parameter-steps,
        thousand operator calls), forward and backward: the priced quantities."""
        n = self.samples
        raw = (
            3.0 * self.flops_per_sample * n,
            3.0 * self.activations_per_sample * n,
            n,
            self.params * self.steps,
            3.0 * self.calls_per_step * self.steps,
        )
        return tuple(v / s for v, s in zip(raw, _SCALE, strict=True))  # type: ignore[return-value]


@dataclass(frozen=True, kw_only=True)
class CostPrior:
    """Prices (joules per unit of each feature) assumed before the study has measured any."""

    j_per_gflop: float
    j_per_mactivation: float
    j_per_ksample: float
    j_per_mparam_step: float
    j_per_kcall: float = 0.0
    source: str

    def prices(self) -> Prices:
        return (
            self.j_per_gflop,
            self.j_per_mactivation,
            self.j_per_ksample,
            self.j_per_mparam_step,
            self.j_per_kcall,
        )


# Fitted to training energy measured on this project's CPU machines (one thread, the estimate
# meter's 3.5 W per core + DRAM) by benchmarks/cost_model.py; any other hardware corrects it
# from its first trial on.
DEFAULT_PRIOR = CostPrior(
    j_per_gflop=0.0498,
    j_per_mactivation=0.00676,
    j_per_ksample=0.335,
    j_per_mparam_step=0.0,
    j_per_kcall=0.125,
    source="econas default: fitted to 34 architectures (10 of them small CNNs) trained on a "
    "shared 2-core Intel Xeon (AVX-512, AMX; 1 thread, estimate meter: 3.5 W per core + DRAM) "
    "by benchmarks/cost_model.py",
)


@dataclass(frozen=True)
class CostPrediction:
    """A predicted training energy and what it rests on."""

    energy_kwh: float
    basis: str  # "prior" | "prior x study (n=3)" | "study fit (n=8)" ...
    observations: int
    prices_j: Prices  # per GFLOP, 1M activations, 1k samples, 1M param-steps, 1k calls

    @property
    def energy_j(self) -> float:
        return self.energy_kwh * J_PER_KWH


@dataclass
class TrainingCostModel:
    """Predicts training kWh from :class:`TrainingWork`, learning the study's prices.

    ``recent``: how many of the latest observations set the scale (the load of a shared
    machine drifts, and with it the energy of the same work); ``min_fit``: observations from
    which the prices are refitted to the study's own trials instead of the prior's.
    """

    prior: CostPrior = DEFAULT_PRIOR
    # Replayed on four sequences measured on one day (a quickstart's 16 trials and three runs of
    # benchmarks/cost_model.py, 34 architectures each), min_fit 6 / recent 3 put 88/82/79/74%
    # of the predictions within 30%, against 75/82/76/71% for the earlier 10 / 5.
    min_fit: int = 6
    recent: int = 3
    _seen: list[tuple[TrainingWork, float]] = field(default_factory=list, repr=False)

    @classmethod
    def from_observations(
        cls,
        observations: Iterable[tuple[TrainingWork, float]],
        *,
        prior: CostPrior = DEFAULT_PRIOR,
        min_fit: int = 6,
        recent: int = 3,
    ) -> TrainingCostModel:
        model = cls(prior=prior, min_fit=min_fit, recent=recent)
        for work, kwh in observations:
            model.observe(work, kwh)
        return model

    @property
    def observations(self) -> int:
        return len(self._seen)

    def observe(self, work: TrainingWork, energy_kwh: float) -> None:
        """A trial's measured training energy (ignored unless finite and > 0), in the order
        the trials ran."""
        if energy_kwh > 0 and math.isfinite(energy_kwh):
            self._seen.append((work, float(energy_kwh)))

    def predict(self, work: TrainingWork) -> CostPrediction:
        n = len(self._seen)
        if n >= self.min_fit:
            prices, basis = fit_prices(self._seen), f"study fit (n={n})"
        else:
            prices, basis = self.prior.prices(), "prior"
        if n:
            latest = self._seen[-self.recent :]
            scale = median([kwh / work_energy_kwh(w, prices) for w, kwh in latest])
            prices = tuple(p * scale for p in prices)  # type: ignore[assignment]
            whose = "trial's" if len(latest) == 1 else f"{len(latest)} trials'"
            basis += f" x the last {whose} ratio" if n < self.min_fit else ""
        return CostPrediction(
            energy_kwh=work_energy_kwh(work, prices), basis=basis, observations=n, prices_j=prices
        )


def work_energy_kwh(work: TrainingWork, prices: Sequence[float]) -> float:
    """kWh of ``work`` at ``prices`` (J per feature unit, e.g. a prediction's ``prices_j``);
    never 0 (a floor of 1 mJ)."""
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
                best = (sse, tuple(prices))  # type: ignore[assignment]
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
        f"study's median trial ({typical * J_PER_KWH:.3g} J over {plural(len(done), 'trial')}), above "
        f"the {max_ratio:g}x limit"
    )


def activation_elements(model: Any, input_shape: tuple[int, ...]) -> int:
    """Elements of every tensor the forward pass of one ``input_shape`` (``(C, H, W)``)
    sample creates, counted at the torch-function level (convolutions, BatchNorm,
    activations, residual additions, squeeze-excitation products, attention...): the memory
    traffic that costs a CPU time beyond the FLOPs. Eval mode, no grad; the mode is restored.
    """
    return forward_work(model, input_shape)[1]


def _flops_of(name: str, args: Any, kwargs: dict[str, Any], out: Any) -> int:
    """fvcore's count (one multiply-add = one flop) of one torch function call."""
    if name == "conv2d":
        w = args[1] if len(args) > 1 else kwargs["weight"]
        return int(out.numel() * w.shape[1] * w.shape[2] * w.shape[3])
    if name == "linear":
        w = args[1] if len(args) > 1 else kwargs["weight"]
        return int(out.numel() * w.shape[1])
    if name in ("matmul", "bmm", "__matmul__"):
        return int(out.numel() * args[0].shape[-1])
    if name == "scaled_dot_product_attention":
        q, k, v = args[:3]
        return int(q.numel() // q.shape[-1] * k.shape[-2] * (q.shape[-1] + v.shape[-1]))
    if name == "batch_norm":
        return 2 * int(out.numel())
    if name == "layer_norm":
        return 5 * int(out.numel())
    if name == "adaptive_avg_pool2d":
        return int(args[0].numel())
    return 0


def forward_work(model: Any, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(flops, activation elements, torch-function calls)`` of the forward pass of one
    ``input_shape`` sample, in one eager pass at the torch-function level: the FLOPs in fvcore's convention
    (:func:`nas.cost.analyze_cost` gives the same totals for this project's CNN and ViT
    spaces, ``tests/test_cost.py``) at a fraction of its trace's cost, so a sampler can
    describe hundreds of candidates. Eval mode, no grad; the mode is restored."""
    import torch
    from torch.overrides import TorchFunctionMode

    class _Count(TorchFunctionMode):
        flops = 0
        elements = 0
        calls = 0

        def __torch_function__(
            self, func: Any, types: Any, args: Any = (), kwargs: Any = None
        ) -> Any:
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            self.calls += 1
            if isinstance(out, torch.Tensor):
                self.elements += out.numel()
                self.flops += _flops_of(getattr(func, "__name__", ""), args, kwargs, out)
            return out

    was_training = model.training
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.zeros(1, *input_shape, device=device)
    counter = _Count()
    try:
        model.eval()
        with torch.no_grad(), counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.flops, counter.elements, counter.calls
