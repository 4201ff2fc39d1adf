"""A trial at or below chance (it learnt nothing) is flagged in pareto, the report and the card."""

from __future__ import annotations

import json

import optuna
import pytest

from nas.carbon_label import build_carbon_label, model_card
from nas.pareto import pareto_rows, pareto_table
from nas.record import TrialRecord
from nas.report import build_report


def _spec(classes: int) -> str:
    return json.dumps(
        {"family": "cnn", "in_channels": 1, "num_classes": classes, "image_size": 28, "config": {}}
    )


@pytest.fixture
def study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize"])
    for acc, kg in ((0.095, 1e-6), (0.81, 8e-6)):
        attrs = {
            "accuracy": acc,
            "kgco2e": kg,
            "energy_kwh": kg * 20,
            "arch": "cnn|x",
            "arch_spec": _spec(10),
            "energy_source": "estimate",
            "energy_kind": "estimated",
            "hardware": "cpu",
            "intensity_g_per_kwh": 50.0,
            "intensity_source": "fixed",
        }
        study.add_trial(optuna.trial.create_trial(values=[acc, kg], user_attrs=attrs))
    return study


def test_record_knows_chance() -> None:
    rec = TrialRecord({"accuracy": 0.1, "arch_spec": _spec(10)})
    assert rec.num_classes == 10 and rec.chance_accuracy == pytest.approx(0.1)
    assert rec.at_or_below_chance
    assert not TrialRecord({"accuracy": 0.11, "arch_spec": _spec(10)}).at_or_below_chance
    assert not TrialRecord({"accuracy": 0.05}).at_or_below_chance  # classes unknown
    assert TrialRecord({"arch_spec": "not json"}).num_classes is None


def test_pareto_flags_chance(study: optuna.Study) -> None:
    rows = pareto_rows(study)
    assert [r["at_or_below_chance"] for r in rows] == [True, False]
    assert rows[0]["chance_accuracy"] == pytest.approx(0.1)
    text = pareto_table(study)
    assert "0.0950 (chance)" in text
    assert "trial 0: validation accuracy 0.0950 is at or below chance (1/10 = 0.1)" in text
    assert "trial 1: validation accuracy" not in text


def test_report_flags_chance(study: optuna.Study) -> None:
    page = build_report(study).html
    assert "At or below chance (1/10 = 0.1) on the front: trial(s) 0 (0.0950)" in page
    assert page.count("(at or below chance)") >= 1


def test_card_flags_chance(study: optuna.Study) -> None:
    low, high = study.trials
    label = build_carbon_label(study, low)
    assert label["at_or_below_chance"] is True and label["chance_accuracy"] == pytest.approx(0.1)
    assert "at or below chance, 1/10: the proxy learnt nothing" in model_card(label)
    assert "at or below chance" not in model_card(build_carbon_label(study, high))
