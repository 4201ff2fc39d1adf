"""The cost probe: a few metered training steps before a trial trains predict its energy."""

from __future__ import annotations

import json
from types import SimpleNamespace

import optuna
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nas.config import ConfigError
from nas.efficiency import cost_guard
from nas.efficiency.cost_guard import CostGuard
from nas.efficiency.cost_model import TrainingWork
from nas.efficiency.cost_probe import probe_prediction, probe_step_energy
from nas.energy import EstimateMeter
from nas.prediction import prediction_lines
from nas.record import TrialAttrs, phase_key
from nas.search import run_search
from nas.train import TrainingPlan
from tests.configs import tiny_config

TRAIN_KWH = phase_key("train", "energy_kwh")


def _data(n: int = 256) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,)))


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 26 * 26, 10)
    )


def _plan() -> TrainingPlan:
    return TrainingPlan(epochs=2, batch_size=32, lr=0.01, device=torch.device("cpu"))


def test_the_probe_meters_steps_on_a_copy_and_leaves_the_trial_untouched() -> None:
    model, data = _model(), _data()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    with EstimateMeter() as meter:
        per_step, spent = probe_step_energy(model, data, _plan(), meter, steps=3)
        assert meter.open_windows == ()  # every window it opened is closed
    assert 0 < per_step and 3 * per_step < spent  # the warm-up step and the copy count too
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm stats included
    assert torch.equal(torch.get_rng_state(), rng)  # the trial's random draws are unchanged
    assert model.training  # left in the mode it was in


def test_a_one_batch_data_set_meters_its_only_step() -> None:
    with EstimateMeter() as meter:
        per_step, spent = probe_step_energy(_model(), _data(20), _plan(), meter, steps=2)
    assert 0 < per_step <= spent
    with pytest.raises(ValueError, match="probe steps"), EstimateMeter() as meter:
        probe_step_energy(_model(), _data(), _plan(), meter, steps=0)


def test_the_prediction_scales_the_probe_by_the_latest_trials_ratio() -> None:
    first = probe_prediction(1e-6, 100, [])
    assert first.energy_kwh == pytest.approx(1e-4) and first.basis == "probe"
    # measured / probed: 2, 1, 1.5, 1.2 -> the last three's median is 1.2
    history = [(1.0, 2.0), (1.0, 1.0), (2.0, 3.0), (1.0, 1.2)]
    later = probe_prediction(1e-6, 100, history)
    assert later.energy_kwh == pytest.approx(1.2e-4)
    assert later.basis == "probe x the last 3 trials' ratio"


def test_a_study_records_the_probe_its_prediction_and_the_static_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    probed = run_search(tiny_config("probe", study={"trials": 3}), progress=False).study
    plain = run_search(
        tiny_config("plain", study={"trials": 3}, search={"cost_probe_steps": 0}), progress=False
    ).study
    for a, b in zip(probed.trials, plain.trials, strict=True):
        ua, ub = a.user_attrs, b.user_attrs
        assert ua[TrialAttrs.arch] == ub[TrialAttrs.arch]
        # the probe trains a copy with the random state restored: the same training exactly
        assert ua[TrialAttrs.train_loss] == ub[TrialAttrs.train_loss]
        assert ua[TrialAttrs.accuracy] == ub[TrialAttrs.accuracy]
        assert ua[TrialAttrs.cost_probe_energy_kwh] > 0
        assert ua[TrialAttrs.cost_probe_kwh] > 0
        assert TrialAttrs.cost_probe_kwh not in ub
        assert ub[TrialAttrs.predicted_train_energy_kwh] == pytest.approx(
            ub[TrialAttrs.predicted_train_energy_static_kwh]
        )
        # the probe's energy is drawn in phase screen, inside the trial's energy
        assert ua[phase_key("screen", "energy_kwh")] >= ua[TrialAttrs.cost_probe_energy_kwh]
    bases = [t.user_attrs[TrialAttrs.predicted_train_energy_basis] for t in probed.trials]
    assert bases[0] == "probe (2 steps)"
    assert bases[2] == "probe x the last 2 trials' ratio (2 steps)"
    t2 = probed.trials[2].user_attrs
    history = [
        (t.user_attrs[TrialAttrs.cost_probe_kwh], t.user_attrs[TRAIN_KWH])
        for t in probed.trials[:2]
    ]
    expected = probe_prediction(t2[TrialAttrs.cost_probe_kwh] / 4, 4, history).energy_kwh
    assert t2[TrialAttrs.predicted_train_energy_kwh] == pytest.approx(expected)
    lines = prediction_lines(probed.trials)
    assert len(lines) == 2 and "static features alone" in lines[1]
    assert len(prediction_lines(plain.trials)) == 1  # nothing probed: one prediction


def _running(study: optuna.Study) -> SimpleNamespace:
    cfg = tiny_config("guard")
    trial = SimpleNamespace(study=study, number=len(study.trials))
    t = SimpleNamespace(
        config=cfg,
        context=SimpleNamespace(plan=lambda seed: _plan()),
        model=_model(),
        spec=SimpleNamespace(family="cnn"),
        attrs={TrialAttrs.flops: 5e4, TrialAttrs.params: 6000},
        input_shape=(1, 28, 28),
        data=SimpleNamespace(train=_data(200)),
        trial=trial,
        number=trial.number,
        seed=0,
        meter=EstimateMeter(),
    )
    t.record = t.attrs.update
    return t


def test_the_guard_refuses_a_trial_whose_probe_costs_10x_the_median(monkeypatch) -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    work = TrainingWork.of(
        flops_per_sample=5e4, params=6000, train_size=200, epochs=1, batch_size=50
    )
    for _ in range(3):
        attrs = {
            TrialAttrs.cost_probe_kwh: 1e-6,
            TRAIN_KWH: 1e-6,
            TrialAttrs.training_work: json.dumps(vars(work)),
        }
        study.add_trial(optuna.trial.create_trial(values=[0.5, 1e-8], user_attrs=attrs))
    # the static features see a tiny model; the probe measures 50x the median trial
    monkeypatch.setattr(cost_guard, "probe_step_energy", lambda *a, **k: (5e-5 / 4, 1e-7))
    costly = _running(study)
    with pytest.raises(optuna.TrialPruned, match=r"cost guard: .*x the study's median trial"):
        CostGuard(probe_steps=2).screen(costly)
    assert costly.attrs[TrialAttrs.predicted_train_energy_kwh] == pytest.approx(5e-5, rel=1e-6)
    assert json.loads(costly.attrs[TrialAttrs.training_work])["steps"] == 4  # 200 / 50, one epoch
    allowed = _running(study)
    CostGuard(probe_steps=2, allow_costly=True).screen(allowed)


def test_cost_probe_steps_is_bounded() -> None:
    with pytest.raises(ConfigError, match="cost_probe_steps"):
        tiny_config("bad", search={"cost_probe_steps": 65})
    assert tiny_config("off", search={"cost_probe_steps": 0}).search.cost_probe_steps == 0
