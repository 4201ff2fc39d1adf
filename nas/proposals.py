"""The ``eco`` sampler's view of a study: candidates drawn from its spaces, described before
training, priced by the study's own cost model.

:func:`bind_sampler` gives a study's :class:`~nas.search_strategy.ArchSampler` (``[study]
sampler = "eco"``) what it needs once the run's objective exists:

- ``draw``: one random complete architecture, sampled by the spaces' own ``sample`` (so every
  rule of the space, the resolution-adapted downsampling included, holds), as the parameters
  the trial will be asked for (``space`` and the family-prefixed names);
- ``describe``: the candidate rebuilt from those parameters, on the CPU, with its forward
  FLOPs, activation elements and operator calls per sample (:func:`nas.efficiency.cost_model.forward_work`,
  one eager pass: milliseconds), parameters and the training work of the study's ``[train]``
  budget; its identity is the architecture's encoding, so the sampler never proposes one it
  has seen; its features (log FLOPs, log params, log activations, weight layers; family and
  the architecture's scalar choices) feed the accuracy surrogate;
- ``predictor``: :class:`~nas.efficiency.cost_model.TrainingCostModel` fitted to the study's
  completed trials, the same prediction the cost guard records before each trial trains.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna

from nas.efficiency.cost_guard import observations
from nas.efficiency.cost_model import (
    TrainingCostModel,
    TrainingWork,
    forward_work,
    work_energy_kwh,
)
from nas.search_strategy import ArchSampler, Described
from search_spaces import ReplayTrial, SearchSpace


class RandomTrial:
    """Stands in for ``optuna.Trial`` in ``SearchSpace.sample``: uniform answers, recorded."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.params: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        value = choices[int(self.rng.integers(len(choices)))]
        self.params[name] = value
        return value

    def suggest_int(self, name: str, low: int, high: int, **_: Any) -> int:
        value = int(self.rng.integers(low, high + 1))
        self.params[name] = value
        return value


def arch_sampler_of(sampler: optuna.samplers.BaseSampler) -> ArchSampler | None:
    """The ArchSampler inside ``sampler`` (wrapped by TrialSeededSampler), if it is one."""
    seen = 0
    while not isinstance(sampler, ArchSampler) and hasattr(sampler, "inner") and seen < 4:
        sampler, seen = sampler.inner, seen + 1
    return sampler if isinstance(sampler, ArchSampler) else None


def bind_sampler(study: optuna.Study, objective: Any) -> None:
    """Bind the study's ``eco`` sampler (if it has one) to ``objective``'s spaces and context
    (a :class:`nas.pipeline.Objective`)."""
    sampler = arch_sampler_of(study.sampler)
    if sampler is None:
        return
    ctx, spaces = objective.context, objective.spaces
    sampler.bind(
        draw=lambda rng: draw(spaces, ctx, rng),
        describe=lambda params: describe(spaces, ctx, params),
        predictor=predictor,
    )


def _family_of(spaces: Mapping[str, SearchSpace], params: Mapping[str, Any]) -> str | None:
    names = list(spaces)
    name = params.get("space", names[0]) if len(names) > 1 else names[0]
    return name if name in spaces else None


def draw(spaces: Mapping[str, SearchSpace], ctx: Any, rng: np.random.Generator) -> dict[str, Any]:
    """One random architecture of ``spaces`` as the parameters a trial is asked for."""
    trial = RandomTrial(rng)
    names = list(spaces)
    name = trial.suggest_categorical("space", names) if len(names) > 1 else names[0]
    d = ctx.data
    spaces[name].sample(
        trial,  # type: ignore[arg-type]  # duck-typed: only suggest_* are used
        in_channels=d.in_channels,
        num_classes=d.num_classes,
        image_size=d.image_size,
        prefix=f"{name}.",
    )
    return trial.params


def describe(
    spaces: Mapping[str, SearchSpace], ctx: Any, params: Mapping[str, Any]
) -> Described | None:
    """The candidate ``params`` name, built on the CPU and measured statically."""
    name = _family_of(spaces, params)
    if name is None:
        return None
    space, d, cfg = spaces[name], ctx.data, ctx.config
    given = {k: v for k, v in params.items() if k.startswith(f"{name}.")}
    spec = space.sample(
        ReplayTrial(given),  # type: ignore[arg-type]  # duck-typed
        in_channels=d.in_channels,
        num_classes=d.num_classes,
        image_size=d.image_size,
        prefix=f"{name}.",
    )
    space.validate(spec)
    workload = ctx.workload
    model = workload.build(space, spec)
    if workload.trains_modules:
        flops, acts, calls = forward_work(model, tuple(ctx.input_shape))
        n_params = sum(p.numel() for p in model.parameters())
        layers = sum(1 for m in model.modules() if type(m).__name__ in ("Conv2d", "Linear"))
    else:  # a table's architecture: what the table knows before training
        report = workload.cost(model, (1, *ctx.input_shape))
        flops, acts, calls, n_params, layers = report.flops or 0, 0, 0, report.params, 0
    work = TrainingWork.of(
        flops_per_sample=float(flops),
        params=int(n_params),
        activations_per_sample=float(acts),
        calls_per_step=float(calls),
        train_size=len(d.train),
        epochs=cfg.train.epochs,
        batch_size=cfg.data.batch_size,
        family=spec.family,
    )
    scalars = sorted(
        (k, v) for k, v in spec.config.items() if isinstance(v, (str, bool, int, float))
    )
    return Described(
        key=spec.encode(),
        numeric=(
            math.log10(flops + 1.0),
            math.log10(n_params + 1.0),
            math.log10(acts + 1.0),
            float(layers),
        ),
        categorical=(spec.family, *(f"{k}={v!r}" for k, v in scalars)),
        work=work,
    )


def predictor(study: optuna.Study) -> Any:
    """Predicted training kWh of a TrainingWork, by the study's own fitted cost model: the
    prices fitted once per proposal, then every candidate priced by them."""
    model = TrainingCostModel.from_observations(observations(study.get_trials(deepcopy=False)))
    prices: list[tuple[float, ...]] = []

    def price(work: TrainingWork) -> float:
        if not prices:
            prices.append(model.predict(work).prices_j)
        return work_energy_kwh(work, prices[0])

    return price
