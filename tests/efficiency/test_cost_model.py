"""The training-cost model: features, the prior, learning the study's prices, the 10x guard."""

from __future__ import annotations

import math

import pytest
from torch import nn

from nas.efficiency.cost_model import (
    DEFAULT_PRIOR,
    J_PER_KWH,
    TrainingCostModel,
    TrainingWork,
    activation_elements,
    refusal,
)


def _work(
    flops: float, params: int, acts: float = 0.0, calls: float = 0.0, *, family: str = "cnn"
) -> TrainingWork:
    return TrainingWork.of(
        flops_per_sample=flops, params=params, train_size=2000, epochs=2, batch_size=64,
        activations_per_sample=acts, calls_per_step=calls, family=family,
    )  # fmt: skip


def _joules(work: TrainingWork, prices: tuple[float, ...]) -> float:
    return sum(f * p for f, p in zip(work.features(), prices, strict=True))


ROWS = [
    (3e5, 9e3, 2e4), (1e7, 8e4, 1e5), (4e6, 7e4, 3e5), (2e7, 1e5, 2e5), (5e5, 3e4, 5e4),
    (3e7, 3e5, 6e5), (8e6, 1.4e5, 9e4), (1e6, 1e4, 1e5), (6e6, 5e4, 4e5),
]  # fmt: skip
CALLS = [13, 41, 65, 75, 92, 24, 39, 29, 56]  # torch-function calls of a forward pass
WORKS = [_work(f, p, a, c) for (f, p, a), c in zip(ROWS, CALLS, strict=True)]


def test_work_counts_samples_and_steps() -> None:
    w = _work(1e6, 1000, 500)
    assert (w.samples, w.steps) == (4000, 2 * 32)  # ceil(2000 / 64) = 32 steps an epoch
    gflop, mact, ksamples, mparam_steps, kcalls = w.features()
    assert gflop == pytest.approx(3 * 1e6 * 4000 / 1e9)  # forward + backward ~ 3 forwards
    assert mact == pytest.approx(3 * 500 * 4000 / 1e6)
    assert (ksamples, mparam_steps) == (pytest.approx(4.0), pytest.approx(1000 * 64 / 1e6))
    assert kcalls == 0.0  # calls_per_step not given: a work stored before it was counted
    w = TrainingWork.of(
        flops_per_sample=1e6, params=1000, train_size=2000, epochs=2, batch_size=64,
        calls_per_step=20,
    )  # fmt: skip
    assert w.features()[4] == pytest.approx(3 * 20 * 64 / 1e3)  # forward, backward, step
    with pytest.raises(ValueError, match="flops_per_sample"):
        TrainingWork(flops_per_sample=math.nan, params=1, samples=1, steps=1)


def test_before_any_trial_the_prior_predicts() -> None:
    pred = TrainingCostModel().predict(WORKS[0])
    assert pred.basis == "prior" and pred.observations == 0
    assert pred.energy_j == pytest.approx(_joules(WORKS[0], DEFAULT_PRIOR.prices()))


def test_few_trials_scale_the_prior_by_the_measured_ratio() -> None:
    model = TrainingCostModel(min_fit=6)
    for w in WORKS[:3]:  # this machine draws 2.5x what the prior says
        model.observe(w, 2.5 * _joules(w, DEFAULT_PRIOR.prices()) / J_PER_KWH)
    pred = model.predict(WORKS[5])
    assert pred.basis == "prior x the last 3 trials' ratio"
    assert pred.energy_j == pytest.approx(2.5 * _joules(WORKS[5], DEFAULT_PRIOR.prices()))


def test_enough_trials_fit_the_study_s_own_prices() -> None:
    true = (0.4, 0.02, 0.9, 0.05, 0.3)  # a machine whose prices differ from the prior's mix
    model = TrainingCostModel.from_observations(
        ((w, _joules(w, true) / J_PER_KWH) for w in WORKS[:8]), min_fit=6
    )
    pred = model.predict(WORKS[8])
    assert pred.basis.startswith("study fit (n=8)")
    assert pred.energy_j == pytest.approx(_joules(WORKS[8], true), rel=0.02)
    model.observe(WORKS[0], 0.0)  # nothing measured: not an observation
    model.observe(WORKS[0], math.inf)
    assert model.observations == 8


def test_the_scale_follows_the_latest_trials_when_the_machine_gets_busier() -> None:
    model = TrainingCostModel(recent=3, min_fit=10)  # the prior scaled, not refitted
    prices = DEFAULT_PRIOR.prices()
    for i, w in enumerate(WORKS[:6]):  # the same work draws 2x from the fourth trial on
        model.observe(w, (1 if i < 3 else 2) * _joules(w, prices) / J_PER_KWH)
    assert model.predict(WORKS[7]).energy_j == pytest.approx(2 * _joules(WORKS[7], prices))


def test_the_guard_refuses_more_than_10x_the_median_trial() -> None:
    measured = [1e-6, 2e-6, 3e-6]  # kWh: median 2e-6
    assert refusal(1.99e-5, measured) is None  # just under 10x: allowed
    reason = refusal(2.2e-5, measured)
    assert reason is not None and "11.0x the study's median trial" in reason
    assert "over 3 trials" in reason and "10x limit" in reason
    assert refusal(2.2e-5, measured, max_ratio=20) is None
    assert refusal(1.0, []) is None  # nothing measured yet: no basis to refuse


def test_activation_elements_counts_every_leaf_output() -> None:
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)
    )
    model.train()
    # conv (4*8*8) + relu (4*8*8) + flatten (256) + linear (3)
    assert activation_elements(model, (1, 8, 8)) == 256 * 3 + 3
    assert model.training  # the mode is restored
