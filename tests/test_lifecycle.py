"""nas.lifecycle: lifecycle kgCO2e as an objective; a large inference volume moves the front."""

from __future__ import annotations

import math

import optuna
import pytest

import nas.study
from nas.config import all_objectives, config_from_dict
from nas.errors import ConfigError
from nas.lifecycle import LifecycleSection, project, project_trial
from nas.report import Point, pareto_front, points
from nas.workload import TorchWorkload
from tests.report.tiny_study import tiny_study

VOLUME = {"requests_per_day": 1e7, "days_deployed": 365.0, "retrain_every_days": 120.0}


@pytest.fixture(scope="module")
def lifecycle_study() -> optuna.Study:
    with pytest.MonkeyPatch.context() as mp:
        # nas.study looks directions up in the built-in OBJECTIVES only (see the report:
        # all_objectives() there); this makes the plugin's objective known either way.
        mp.setattr(nas.study, "OBJECTIVES", all_objectives(), raising=False)
        _, study = tiny_study(
            "lifecycle",
            trials=6,
            study={"objectives": ["accuracy", "lifecycle_kgco2e"]},
            lifecycle=VOLUME,
        )
    return study


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]


def test_objective_is_the_stored_lifecycle_sum(lifecycle_study: optuna.Study) -> None:
    assert lifecycle_study.metric_names == ["accuracy", "lifecycle_kgco2e"]
    for t in _complete(lifecycle_study):
        a = t.user_attrs
        assert t.values[1] == pytest.approx(a["lifecycle_kgco2e"])
        parts = ("search_share", "training", "retraining", "inference")
        assert a["lifecycle_kgco2e"] == pytest.approx(
            sum(a[f"lifecycle_{p}_kgco2e"] for p in parts)
        )
        # training = the deployed model's at the [final] budget, projected; never the proxy's
        assert a["lifecycle_training_basis"].startswith("projected: proxy")
        train_kg = a["lifecycle_training_energy_kwh"] * a["intensity_g_per_kwh"] / 1000
        assert a["lifecycle_training_kgco2e"] == pytest.approx(train_kg)
        assert a["lifecycle_training_kgco2e"] > 10 * a["kgco2e"]  # full split x 5 epochs
        assert a["lifecycle_retrainings"] == 3 and a[
            "lifecycle_retraining_kgco2e"
        ] == pytest.approx(3 * a["lifecycle_training_kgco2e"])
        n = VOLUME["requests_per_day"] * VOLUME["days_deployed"]
        assert a["lifecycle_inferences"] == n
        per_sample_kwh = a["inference_energy_j_per_sample"] / 3.6e6  # measured in the trial
        assert a["lifecycle_inference_energy_kwh_per_sample"] == pytest.approx(per_sample_kwh)
        g = a["intensity_g_per_kwh"]
        assert a["lifecycle_inference_kgco2e"] == pytest.approx(per_sample_kwh * n * g / 1000)
        assert a["lifecycle_inference_kgco2e"] > 100 * a["kgco2e"]  # inference dominates
        assert (
            a["lifecycle_search_share_kgco2e"] > 0
            and a["lifecycle_inference_energy_kind"] == "estimated"
        )


def test_stored_objective_is_the_projection_of_the_stored_trials(
    lifecycle_study: optuna.Study,
) -> None:
    trials = lifecycle_study.trials
    section = LifecycleSection(**VOLUME)
    for t in _complete(lifecycle_study):
        a = t.user_attrs
        share = a["lifecycle_search_share_kgco2e"]
        projected = project_trial(a, section, search_share_kgco2e=share)
        assert projected.kgco2e == pytest.approx(a["lifecycle_kgco2e"])
    lifecycle = [p.trial for p in pareto_front(points(trials, "lifecycle_kgco2e"))]
    # Optuna's front, less the trials that reused a front trial's result (the same finding)
    best = [t for t in lifecycle_study.best_trials if not t.user_attrs.get("reused")]
    assert sorted(lifecycle) == sorted(t.number for t in best)
    # with no inference volume the same stored trials give the training-only front
    none = LifecycleSection(requests_per_day=0.0, search_share="none")
    for t in _complete(lifecycle_study):
        training = t.user_attrs["lifecycle_training_kgco2e"]  # projected, not the proxy's
        assert project_trial(t.user_attrs, none).kgco2e == pytest.approx(training)


def _stored(accuracy: float, kgco2e: float, j_per_sample: float) -> optuna.trial.FrozenTrial:
    attrs = {
        "accuracy": accuracy,
        "kgco2e": kgco2e,
        "inference_energy_j_per_sample": j_per_sample,
        "intensity_g_per_kwh": 56.0,
    }
    return optuna.trial.create_trial(values=[accuracy, kgco2e], user_attrs=attrs)


def test_large_volume_moves_the_front() -> None:
    # stored trials shaped like a search's: a model cheap to train but costly to run (0), one
    # costly to train but cheap to run (1), one dominated in training (2)
    study = optuna.create_study(directions=["maximize", "minimize"])
    for args in [(0.80, 1e-6, 0.05), (0.82, 5e-6, 0.001), (0.78, 2e-6, 0.0005)]:
        study.add_trial(_stored(*args))

    def front(requests_per_day: float) -> list[int]:
        sec = LifecycleSection(requests_per_day=requests_per_day, search_share="none")
        kg = {t.number: project_trial(t.user_attrs, sec).kgco2e for t in study.trials}
        pts = [
            Point(trial=n, accuracy=study.trials[n].user_attrs["accuracy"], kgco2e=k, attrs={})
            for n, k in kg.items()
        ]
        return [p.trial for p in pareto_front(pts)]

    training = [p.trial for p in pareto_front(points(study.trials, "kgco2e"))]
    assert front(0.0) == training == [0, 1]
    assert front(1e6) == [2, 1]  # a million requests a day for a year: inference dominates


def test_absent_section_does_nothing() -> None:
    from types import SimpleNamespace

    from nas.lifecycle import LifecycleStep
    from nas.pipeline import assemble_steps

    assert not config_from_dict({}).lifecycle.active
    steps = assemble_steps(SimpleNamespace(config=config_from_dict({}), workload=TorchWorkload()))  # type: ignore[arg-type]
    assert not any(isinstance(s, LifecycleStep) for s in steps)  # no attrs, no objective
    with pytest.raises(ConfigError, match="needs a \\[lifecycle\\] section"):
        config_from_dict({"study": {"objectives": ["accuracy", "lifecycle_kgco2e"]}})


def test_tiny_study_without_lifecycle_has_no_lifecycle_attrs() -> None:
    _, study = tiny_study("tiny")
    assert not any(k.startswith("lifecycle_") for t in study.trials for k in t.user_attrs)


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"requests_per_day": -1.0}, "requests_per_day"),
        ({"requests_per_day": 1.0, "target_device": "tpu"}, "target_device"),
        ({"requests_per_day": 1.0, "search_share": "half"}, "search_share"),
        ({"requests_per_day": 1.0, "retrain_every_days": 0.0}, "retrain_every_days"),
    ],
)
def test_bad_section_is_a_config_error(table: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        config_from_dict({"lifecycle": table})


def test_project_arithmetic() -> None:
    sec = LifecycleSection(requests_per_day=1000.0, days_deployed=10.0, retrain_every_days=4.0)
    lc = project(
        sec,
        training_kgco2e=2.0,
        inference_kwh_per_sample=1e-6,
        intensity_g_per_kwh=500.0,
        search_share_kgco2e=1.0,
    )
    assert lc.retrainings == 2 and lc.inferences == 10_000
    assert lc.inference_kgco2e == pytest.approx(1e-6 * 10_000 * 0.5)
    assert lc.kgco2e == pytest.approx(1.0 + 2.0 + 4.0 + 0.005) and math.isfinite(lc.kgco2e)
