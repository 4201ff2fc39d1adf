"""The projection at the machine's speed now: the proxy's probe against probes before the run."""

from __future__ import annotations

import json

import optuna
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nas.efficiency.cost_model import TrainingWork
from nas.energy import EstimateMeter
from nas.final import _speed
from nas.final._project import Projection
from nas.final._speed import speed_factor
from nas.record import TrialAttrs, TrialRecord
from nas.train import TrainingPlan

WORK = TrainingWork.of(flops_per_sample=1e5, params=100, train_size=640, epochs=2, batch_size=64)


def _rec(probed_kwh: float | None) -> TrialRecord:
    attrs: dict[str, object] = {TrialAttrs.training_work: json.dumps(vars(WORK))}
    if probed_kwh is not None:
        attrs[TrialAttrs.cost_probe_kwh] = probed_kwh
    trial = optuna.trial.create_trial(values=[0.5], user_attrs=attrs)
    return TrialRecord.of(trial)


def _args() -> tuple[nn.Module, TensorDataset, TrainingPlan]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    data = TensorDataset(torch.randn(256, 1, 28, 28), torch.randint(0, 10, (256,)))
    plan = TrainingPlan(epochs=2, batch_size=64, lr=0.01, device=torch.device("cpu"))
    return net, data, plan


def test_the_factor_is_the_median_probe_now_over_the_proxy_s(monkeypatch) -> None:
    now = iter([(3e-9, 1e-8), (2e-9, 1e-8), (9e-9, 1e-8)])  # a noisy probe: the median counts
    monkeypatch.setattr(_speed, "probe_step_energy", lambda *a, **k: next(now))
    # the proxy: 1e-9 kWh a step, x its 20 steps
    speed = speed_factor(_rec(1e-9 * WORK.steps), *_args(), EstimateMeter(), steps=2)
    assert speed.factor == pytest.approx(3.0)
    assert speed.probe_kwh == pytest.approx(3e-8)
    assert "scaled by 3.00" in speed.why and "median of 3 probes of 2 steps" in speed.why


def test_no_probe_no_meter_no_factor() -> None:
    net, data, plan = _args()
    assert speed_factor(_rec(None), net, data, plan, EstimateMeter(), steps=2).factor is None
    assert speed_factor(_rec(1e-9), net, data, plan, None, steps=2).factor is None
    assert speed_factor(_rec(1e-9), net, data, plan, EstimateMeter(), steps=0).factor is None


def test_a_real_probe_gives_a_positive_factor_and_draws_energy() -> None:
    with EstimateMeter() as meter:
        speed = speed_factor(_rec(1e-9 * WORK.steps), *_args(), meter, steps=2)
    assert speed.factor is not None and speed.factor > 0 and speed.probe_kwh > 0


def test_at_speed_scales_the_compute_phases_only() -> None:
    phases = {"train": 4.0, "eval": 1.0, "test": 1.0, "build": 0.5, "checkpoint": 0.5}
    p = Projection(energy_kwh=7.0, duration_s=10.0, method="m", phases_kwh=phases)
    q = p.at_speed(1.5, "scaled by 1.50")
    assert q.phases_kwh == {"train": 6.0, "eval": 1.5, "test": 1.5, "build": 0.5, "checkpoint": 0.5}
    assert q.energy_kwh == pytest.approx(10.0) and q.duration_s == pytest.approx(15.0)
    assert q.method == "m; scaled by 1.50" and q.inputs["speed_factor"] == 1.5
