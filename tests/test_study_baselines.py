"""Baselines in every new study, the cost guard, and the front's verdict on each baseline."""

from __future__ import annotations

import json
from types import SimpleNamespace

import optuna
import pytest
from torch import nn

from nas.baselines import enqueue_baselines, plan_baselines
from nas.efficiency.cost_guard import CostGuard
from nas.efficiency.cost_model import DEFAULT_PRIOR, J_PER_KWH, TrainingWork
from nas.pareto import baseline_verdicts, pareto_table
from nas.prediction import prediction_errors
from nas.record import StudyAttrs, TrialAttrs, phase_key
from nas.search import run_search
from nas.study import open_study
from nas.workload import TorchWorkload
from search_spaces.baselines import baseline_specs
from tests.configs import TINY_VIT, tiny_config

TRAIN_KWH = phase_key("train", "energy_kwh")
TEXTBOOK = baseline_specs(1, 10, 28)["textbook"].encode()


def _cfg(name: str, **sections: dict) -> object:
    # the default CNN space (the tiny one cannot hold the textbook CNN), the textbook only
    search = {"cnn": None, "baselines": ["textbook"], **sections.pop("search", {})}
    return tiny_config(name, search=search, **sections)


def test_a_new_study_starts_with_its_baseline_and_a_resumed_one_does_not(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_search(_cfg("base", study={"trials": 2}), progress=False)
    assert result.new_trials == 2  # the baseline enqueued is one of them
    trials = sorted(result.study.trials, key=lambda t: t.number)
    first = trials[0]
    assert first.user_attrs[TrialAttrs.baseline] == "textbook"
    assert first.user_attrs[TrialAttrs.arch] == TEXTBOOK  # rebuilt exactly by the sampler
    assert first.state == optuna.trial.TrialState.COMPLETE
    assert TrialAttrs.baseline not in trials[1].user_attrs  # an ordinary sample after it
    stored = json.loads(result.study.user_attrs[StudyAttrs.baselines])
    assert stored["enqueued"] == ["textbook"]
    # trained and metered like any trial, its training energy predicted before training
    for t in trials:
        assert t.state == optuna.trial.TrialState.COMPLETE  # fewer than 3: none refused
        assert t.user_attrs[TrialAttrs.predicted_train_energy_kwh] > 0
        assert t.user_attrs[TRAIN_KWH] > 0
        assert json.loads(t.user_attrs[TrialAttrs.training_work])["params"] > 0
    again = run_search(_cfg("base", study={"trials": 3}), progress=False)  # resumed
    names = [t.user_attrs.get(TrialAttrs.baseline) for t in again.study.trials]
    assert names.count("textbook") == 1 and len(again.study.trials) == 3
    assert again.new_trials == 1


def test_a_study_shorter_than_its_baselines_counts_only_what_ran(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = _cfg("short", study={"trials": 1}, search={"baselines": ["textbook", "resnet8"]})
    result = run_search(cfg, progress=False)
    assert result.new_trials == 1  # resnet8 still waits, for a resumed run to train
    states = [t.state for t in sorted(result.study.trials, key=lambda t: t.number)]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.WAITING]


def test_a_second_worker_on_the_study_does_not_enqueue_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = _cfg("workers")
    shape = dict(in_channels=1, num_classes=10, image_size=28)
    study = open_study(cfg)
    assert enqueue_baselines(study, cfg, **shape) == ["textbook"]
    other = open_study(cfg)  # another process opening the same storage
    assert enqueue_baselines(other, cfg, **shape) == []
    waiting = other.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.user_attrs[TrialAttrs.baseline] for t in waiting] == ["textbook"]


def test_only_baselines_of_searched_families_that_fit_the_space_are_planned() -> None:
    shape = dict(in_channels=1, num_classes=10, image_size=28)
    tiny = tiny_config("fit", search={"baselines": None})  # the tiny CNN space: 1 stage
    assert all(b.params is None for b in plan_baselines(tiny, **shape))
    both = tiny_config(
        "both", search={"cnn": None, "baselines": None, "spaces": ["cnn", "vit"], "vit": TINY_VIT}
    )
    planned = {b.name: b for b in plan_baselines(both, **shape)}
    assert planned["textbook"].params["space"] == "cnn"  # the family is a parameter too
    assert planned["resnet8"].params is not None and planned["mobilenetv2_tiny"].params
    assert planned["vit_tiny"].params is None  # TINY_VIT has no dim 64
    assert "not in the configured space" in planned["vit_tiny"].reason
    cnn_only = tiny_config("cnn", search={"cnn": None, "baselines": None})
    reason = {b.name: b.reason for b in plan_baselines(cnn_only, **shape)}["vit_tiny"]
    assert "not searched" in reason


# -- the cost guard ---------------------------------------------------------------------------
SMALL = TrainingWork.of(flops_per_sample=3e5, params=9000, train_size=200, epochs=1, batch_size=50)


def _prior_kwh(work: TrainingWork) -> float:
    return (
        sum(f * p for f, p in zip(work.features(), DEFAULT_PRIOR.prices(), strict=True)) / J_PER_KWH
    )


def _study_with_trials(n: int = 3) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"])
    for _ in range(n):
        study.add_trial(
            optuna.trial.create_trial(
                values=[0.5, 1e-8],
                user_attrs={
                    TrialAttrs.training_work: json.dumps(vars(SMALL)),
                    TRAIN_KWH: _prior_kwh(SMALL),  # measured as the prior predicts
                },
            )
        )
    return study


def _running(study: optuna.Study, flops: float) -> SimpleNamespace:
    cfg = tiny_config("guard")
    trial = SimpleNamespace(study=study, number=len(study.trials))
    t = SimpleNamespace(
        config=cfg,
        model=nn.Sequential(nn.Flatten(), nn.Linear(784, 10)),
        spec=SimpleNamespace(family="cnn"),
        attrs={TrialAttrs.flops: flops, TrialAttrs.params: 9000},
        input_shape=(1, 28, 28),
        data=SimpleNamespace(train=[None] * 200),
        trial=trial,
        number=trial.number,
    )
    t.record = t.attrs.update
    return t


def test_the_cost_guard_refuses_a_10x_trial_unless_allowed() -> None:
    study = _study_with_trials()
    cheap = _running(study, flops=3e5)
    CostGuard().screen(cheap)  # the study's typical trial: trains
    predicted = cheap.attrs[TrialAttrs.predicted_train_energy_kwh]
    assert predicted == pytest.approx(_prior_kwh(SMALL), rel=0.2)
    costly = _running(study, flops=3e8)  # ~50x the median trial's training energy
    with pytest.raises(optuna.TrialPruned, match=r"cost guard: .*x the study's median trial"):
        CostGuard().screen(costly)
    assert costly.attrs[TrialAttrs.predicted_train_energy_kwh] > 10 * _prior_kwh(SMALL)
    allowed = _running(study, flops=3e8)
    CostGuard(allow_costly=True).screen(allowed)  # trained anyway, the prediction recorded
    assert allowed.attrs[TrialAttrs.predicted_train_energy_kwh] > 10 * _prior_kwh(SMALL)
    few = _running(_study_with_trials(2), flops=3e8)
    CostGuard().screen(few)  # two trials measured: no norm yet, it trains


def test_allow_costly_reaches_the_guard() -> None:
    from nas.pipeline import assemble_steps

    for allow in (False, True):
        cfg = tiny_config("steps", search={"allow_costly": allow})
        ctx = SimpleNamespace(config=cfg, workload=TorchWorkload())
        guards = [s for s in assemble_steps(ctx) if isinstance(s, CostGuard)]
        assert len(guards) == 1 and guards[0].allow_costly is allow


# -- the front's verdict ----------------------------------------------------------------------
def _study(points: list[tuple[float, float, str | None]]) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"], study_name="verdict")
    for acc, kg, name in points:
        attrs = {TrialAttrs.accuracy: acc, TrialAttrs.kgco2e: kg, TrialAttrs.params: 9122}
        if name:
            attrs[TrialAttrs.baseline] = name
        study.add_trial(optuna.trial.create_trial(values=[acc, kg], user_attrs=attrs))
    return study


def test_pareto_states_whether_the_front_dominates_each_baseline() -> None:
    study = _study(
        [
            (0.78, 2e-7, "textbook"),  # trial 0: trial 2 is as cheap and more accurate
            (0.90, 9e-7, "resnet8"),  # trial 1: the most accurate, on the front
            (0.81, 2e-7, None),
            (0.50, 5e-6, None),
        ]
    )
    verdicts = {v.name: v for v in baseline_verdicts(study)}
    assert verdicts["textbook"].dominated_by == (2,)
    assert not verdicts["resnet8"].dominated and verdicts["resnet8"].on_front
    text = pareto_table(study)
    assert "baseline textbook (trial 0)" in text and "dominated by the front (trial 2" in text
    assert "baseline resnet8 (trial 1)" in text and "NOT dominated (on the front)" in text
    assert "1 (resnet8)" in text  # marked in the front's table


def test_the_report_draws_and_judges_the_baselines_escaped() -> None:
    from nas.report import build_report

    study = _study([(0.78, 2e-7, "<b>textbook</b>"), (0.81, 1e-7, None)])
    report = build_report(study)
    assert "baseline &lt;b&gt;textbook&lt;/b&gt; (trial 0)" in report.html
    assert "<b>textbook</b>" not in report.html
    assert "dominated by the front (trial 1" in report.html
    names = [tr.name for tr in report.figures["eco_curve"].data]
    assert "baselines (hand designs)" in names


def test_prediction_errors_are_relative_to_the_measurement() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    for pred, meas in ((1.0, 1.0), (1.2, 1.0), (2.0, 1.0)):
        attrs = {TrialAttrs.predicted_train_energy_kwh: pred, TRAIN_KWH: meas}
        study.add_trial(optuna.trial.create_trial(values=[0.5, 1e-8], user_attrs=attrs))
    errors = prediction_errors(study.trials)
    assert errors.median_abs_error == pytest.approx(0.2)
    assert errors.share_within_30pct == pytest.approx(2 / 3)
    assert "median absolute error 20% over 3 trials" in errors.line()
